"""The sandbox's own API under ``/sandbox/...`` (not ARM): tokens, clock, realism knobs, events, state.

No bearer token needed except on custom-topic publishing (``aeg-sas-key`` or a sandbox bearer token):
it listens on loopback only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from sandbox.arm.config import BucketSpec, EventDeliveryConfig, FaultConfig, LatencyConfig, ThrottleConfig
from sandbox.arm.errors import ArmError
from sandbox.arm.events import WebhookValidationError
from sandbox.arm.http import Request, Response
from sandbox.arm.routing import Router
from sandbox.arm.tokens import InvalidToken

if TYPE_CHECKING:
    from sandbox.arm.server import ArmSandbox


def _config_from(cls: Any, current: Any, body: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(body) - names
    if unknown:
        raise ArmError(400, "InvalidSandboxConfig", f"unknown {cls.__name__} fields: {sorted(unknown)}")
    values = dict(body)
    for bucket in ("reads", "writes", "deletes"):
        if bucket in values and isinstance(values[bucket], dict):
            values[bucket] = BucketSpec(**values[bucket])
    if "retry_schedule" in values:
        values["retry_schedule"] = tuple(values["retry_schedule"])
    try:
        return dataclasses.replace(current, **values)
    except TypeError as exc:
        raise ArmError(400, "InvalidSandboxConfig", str(exc)) from exc


class _EntraError(Exception):
    """An Entra ID protocol error (``{"error", "error_description"}``, not ARM's error shape)."""

    def __init__(self, status: int, body: dict[str, str]) -> None:
        super().__init__(body.get("error_description", ""))
        self.status, self.body = status, body


class AdminApi:
    def __init__(self, sandbox: ArmSandbox) -> None:
        self.sb = sandbox
        self.router = Router()
        r = self.router.provider("Sandbox", api_versions=())
        r.add("POST", "/sandbox/token", self.token)
        r.add("GET", "/sandbox/clock", self.clock_get)
        r.add("POST", "/sandbox/clock/advance", self.clock_advance)
        r.add("PUT", "/sandbox/clock/scale", self.clock_scale)
        r.add("GET", "/sandbox/faults", lambda req: self._get_config(self.sb.faults.config))
        r.add("PUT", "/sandbox/faults", self.faults_put)
        r.add("GET", "/sandbox/throttle", lambda req: self._get_config(self.sb.throttle.config))
        r.add("PUT", "/sandbox/throttle", self.throttle_put)
        r.add("GET", "/sandbox/latency", lambda req: self._get_config(self.sb.latency))
        r.add("PUT", "/sandbox/latency", self.latency_put)
        r.add("GET", "/sandbox/eventgrid/delivery", lambda req: self._get_config(self.sb.events.config))
        r.add("PUT", "/sandbox/eventgrid/delivery", self.delivery_put)
        r.add("GET", "/sandbox/eventgrid/subscriptions", self.subscriptions_list)
        r.add("POST", "/sandbox/eventgrid/subscriptions", self.subscription_create)
        r.add("DELETE", "/sandbox/eventgrid/subscriptions/{id}", self.subscription_delete)
        r.add("GET", "/sandbox/eventgrid/events", lambda req: Response(200, {"value": list(self.sb.events.raised)}))
        r.add("POST", "/sandbox/eventgrid/topics/{topic}/api/events", self.topic_publish)
        r.add("GET", "/sandbox/eventgrid/topics/{topic}/events", self.topic_events)
        r.add("GET", "/sandbox/counters", lambda req: Response(200, self.sb.counters.snapshot()))
        r.add("GET", "/sandbox/state", lambda req: Response(200, self.sb.dump_state()))
        r.add("POST", "/sandbox/subscriptions/{subscriptionId}/moveToTenant", self.move_subscription)
        # the local Entra ID (sandbox/arm/entra.py): discovery, keys, tokens for the app's routes, key rotation
        r.add("GET", "/sandbox/entra/{tenant}/v2.0/.well-known/openid-configuration", self.entra_configuration)
        r.add("GET", "/sandbox/entra/{tenant}/discovery/v2.0/keys", self.entra_keys)
        r.add("POST", "/sandbox/entra/{tenant}/token", self.entra_token)
        r.add("POST", "/sandbox/entra/keys/rotate", self.entra_rotate)

    def handle(self, req: Request) -> Response:
        match = self.router.resolve(req.method, req.raw_path)
        if match is None:
            return Response(404, ArmError(404, "NotFound", f"No sandbox endpoint {req.method} {req.path}.").body())
        route, params = match
        req.params = params
        try:
            return route.handler(req)
        except ArmError as exc:
            return Response(exc.status, exc.body(), dict(exc.headers))
        except _EntraError as exc:
            return Response(exc.status, exc.body)

    # -- token ----------------------------------------------------------------------------------
    def token(self, req: Request) -> Response:
        body = req.json_object()
        principal = body.get("principalId") or self.sb.config.default_principal_id
        tenant = body.get("tenantId") or self.sb.default_tenant
        if tenant not in self.sb.subscriptions.tenants():
            raise ArmError(400, "InvalidTenant", f"The tenant '{tenant}' is not known to the sandbox.")
        assert self.sb._issuer is not None
        scopes = [str(s) for s in body.get("scopes") or []]
        token, expires = self.sb._issuer.mint(str(principal), str(tenant), int(time.time()), scopes)
        return Response(200, {"access_token": token, "expires_on": expires, "token_type": "Bearer"})

    # -- entra (tokens for the app's own routes) -----------------------------------------------
    def _entra_tenant(self, req: Request) -> str:
        tenant = req.param("tenant")
        if tenant.lower() not in {t.lower() for t in self.sb.subscriptions.tenants()}:
            # Entra ID's answer for an unknown tenant (AADSTS90002); the exact body is inferred
            return_error = {"error": "invalid_tenant",
                            "error_description": f"AADSTS90002: Tenant '{tenant[:80]}' not found."}
            raise _EntraError(400, return_error)
        return tenant

    def entra_configuration(self, req: Request) -> Response:
        return Response(200, self.sb.entra.openid_configuration(self._entra_tenant(req)))

    def entra_keys(self, req: Request) -> Response:
        self._entra_tenant(req)
        return Response(200, self.sb.entra.jwks())

    def entra_token(self, req: Request) -> Response:
        """Sandbox-only: ``{principalId, roles?, audience?, name?, lifetimeSeconds?}`` -> a v2.0 access token for
        the app (what ``az account get-access-token --resource <app id URI>`` returns from Entra ID)."""
        tenant = self._entra_tenant(req)
        body = req.json_object()
        principal = body.get("principalId")
        roles = body.get("roles") or []
        if not isinstance(principal, str) or not principal:
            raise ArmError(400, "InvalidRequestContent", "'principalId' (an object id) is required.")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ArmError(400, "InvalidRequestContent", "'roles' must be a list of app role values.")
        lifetime = body.get("lifetimeSeconds")
        token = self.sb.entra.mint(principal, tenant, roles=roles, audience=body.get("audience"),
                                   name=body.get("name"),
                                   lifetime_seconds=int(lifetime) if lifetime is not None else None)
        expires = int(time.time()) + int(lifetime if lifetime is not None else self.sb.entra.lifetime_seconds)
        return Response(200, {"access_token": token, "expires_on": expires, "token_type": "Bearer"})

    def entra_rotate(self, req: Request) -> Response:
        """Sandbox-only: sign with a new key from now on; ``{"retirePrevious": true}`` unpublishes the old ones."""
        retire = bool(req.json_object().get("retirePrevious", False)) if req.raw_body else False
        kid = self.sb.entra.rotate(retire_previous=retire)
        return Response(200, {"kid": kid, "keys": self.sb.entra.published_kids()})

    # -- clock ----------------------------------------------------------------------------------
    def clock_get(self, req: Request) -> Response:
        return Response(200, {"now": self.sb.clock.now().isoformat(), "scale": self.sb.clock.scale})

    def clock_advance(self, req: Request) -> Response:
        seconds = float(req.json_object().get("seconds", 0))
        try:
            self.sb.advance(seconds)
        except ValueError as exc:
            raise ArmError(400, "InvalidClockChange", str(exc)) from exc
        return self.clock_get(req)

    def clock_scale(self, req: Request) -> Response:
        try:
            self.sb.clock.set_scale(float(req.json_object().get("scale", 0)))
        except ValueError as exc:
            raise ArmError(400, "InvalidClockChange", str(exc)) from exc
        return self.clock_get(req)

    # -- knobs ----------------------------------------------------------------------------------
    @staticmethod
    def _get_config(config: Any) -> Response:
        return Response(200, dataclasses.asdict(config))

    def faults_put(self, req: Request) -> Response:
        self.sb.configure_faults(_config_from(FaultConfig, self.sb.faults.config, req.json_object()))
        return self._get_config(self.sb.faults.config)

    def throttle_put(self, req: Request) -> Response:
        self.sb.configure_throttle(_config_from(ThrottleConfig, self.sb.throttle.config, req.json_object()))
        return self._get_config(self.sb.throttle.config)

    def latency_put(self, req: Request) -> Response:
        self.sb.configure_latency(_config_from(LatencyConfig, self.sb.latency, req.json_object()))
        return self._get_config(self.sb.latency)

    def delivery_put(self, req: Request) -> Response:
        self.sb.configure_events(_config_from(EventDeliveryConfig, self.sb.events.config, req.json_object()))
        return self._get_config(self.sb.events.config)

    # -- event grid -----------------------------------------------------------------------------
    def subscriptions_list(self, req: Request) -> Response:
        subs = [
            {"id": s.id, "endpoint": s.webhook_url, "delivered": s.delivered, "failedAttempts": s.failed_attempts,
             "dropped": len(s.dropped)}
            for s in self.sb.events.subscriptions()
        ]
        return Response(200, {"value": subs})

    def subscription_create(self, req: Request) -> Response:
        body = req.json_object()
        endpoint = body.get("endpoint")
        if not isinstance(endpoint, str):
            raise ArmError(400, "InvalidRequestContent", "'endpoint' (a webhook URL) is required.")
        try:
            sub = self.sb.subscribe_webhook(
                endpoint,
                included_event_types=body.get("includedEventTypes"),
                subject_begins_with=body.get("subjectBeginsWith"),
                subject_ends_with=body.get("subjectEndsWith"),
                advanced_filters=body.get("advancedFilters") or (),
            )
        except WebhookValidationError as exc:
            raise ArmError(400, "WebhookValidationFailed", str(exc)) from exc
        except ValueError as exc:
            raise ArmError(400, "InvalidEventSubscription", str(exc)) from exc
        return Response(201, {"id": sub.id, "endpoint": endpoint})

    def subscription_delete(self, req: Request) -> Response:
        self.sb.events.unsubscribe(req.param("id"))
        return Response(204)

    def topic_publish(self, req: Request) -> Response:
        key = req.headers.get("aeg-sas-key")
        if key is None:
            try:
                assert self.sb._issuer is not None
                self.sb._issuer.verify(req.headers.get("authorization"), int(time.time()))
            except InvalidToken as exc:
                raise ArmError(401, "Unauthorized", f"Publishing needs aeg-sas-key or a bearer token: {exc}") from exc
        elif key != self.sb.config.topic_key:
            raise ArmError(401, "Unauthorized", "The aeg-sas-key is not valid for this topic.")
        events = req.json()
        if isinstance(events, dict):
            events = [events]
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            raise ArmError(400, "BadRequest", "The body must be a JSON array of events.")
        self.sb.events.publish_to_topic(req.param("topic"), events)
        return Response(200)

    def topic_events(self, req: Request) -> Response:
        return Response(200, {"value": self.sb.events.topic_events(req.param("topic"))})

    def move_subscription(self, req: Request) -> Response:
        tenant = req.json_object().get("tenantId")
        if not isinstance(tenant, str) or not tenant:
            raise ArmError(400, "InvalidRequestContent", "'tenantId' is required.")
        self.sb.move_subscription(req.param("subscriptionId"), tenant)
        return Response(200, {"subscriptionId": req.param("subscriptionId"), "tenantId": tenant})
