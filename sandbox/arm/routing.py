"""Routes: HTTP method + path template -> handler, the way ARM dispatches to resource providers.

Literal segments match case-insensitively (ARM paths are case-insensitive); ``{name}`` matches one segment.
When several templates match, the one with more literal segments wins (``.../operationResults/{id}`` beats
``.../{childType}/{id}``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from sandbox.arm.http import Request, Response

Handler = Callable[[Request], Response]

KIND_BY_METHOD = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete", "POST": "action"}


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    handler: Handler
    namespace: str
    api_versions: frozenset[str]
    kind: str  # read | write | delete | action
    #: the event's operationName; None derives it from the request path and kind.
    operation: str | None = None
    #: False: no Event Grid event for this route (e.g. operation-status polls are GETs anyway).
    events: bool = True
    #: True: 404 SubscriptionNotFound / ResourceGroupNotFound before the handler runs, as ARM does.
    check_scope: bool = True
    segments: tuple[str, ...] = field(default=(), compare=False)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for seg, part in zip(self.segments, parts, strict=True):
            if seg.startswith("{") and seg.endswith("}"):
                if not part:
                    return None
                params[seg[1:-1]] = unquote(part)
            elif seg.lower() != unquote(part).lower():
                return None
        return params

    @property
    def specificity(self) -> int:
        return sum(1 for s in self.segments if not s.startswith("{"))


def split_path(path: str) -> list[str]:
    return path.strip("/").split("/") if path.strip("/") else []


class ProviderRoutes:
    """The routes of one resource-provider namespace, sharing its api-versions."""

    def __init__(self, router: Router, namespace: str, api_versions: Iterable[str]) -> None:
        self.router = router
        self.namespace = namespace
        self.api_versions = frozenset(api_versions)

    def add(
        self,
        method: str,
        template: str,
        handler: Handler,
        *,
        kind: str | None = None,
        api_versions: Iterable[str] | None = None,
        operation: str | None = None,
        events: bool = True,
        check_scope: bool = True,
    ) -> Route:
        method = method.upper()
        route = Route(
            method=method,
            template=template,
            handler=handler,
            namespace=self.namespace,
            api_versions=frozenset(api_versions) if api_versions is not None else self.api_versions,
            kind=kind or KIND_BY_METHOD[method],
            operation=operation,
            events=events,
            check_scope=check_scope,
            segments=tuple(split_path(template)),
        )
        self.router.routes.append(route)
        return route

    def _decorator(self, method: str, template: str, **kw: object) -> Callable[[Handler], Handler]:
        def wrap(handler: Handler) -> Handler:
            self.add(method, template, handler, **kw)  # type: ignore[arg-type]
            return handler

        return wrap

    def get(self, template: str, **kw: object) -> Callable[[Handler], Handler]:
        return self._decorator("GET", template, **kw)

    def head(self, template: str, **kw: object) -> Callable[[Handler], Handler]:
        return self._decorator("HEAD", template, **kw)

    def put(self, template: str, **kw: object) -> Callable[[Handler], Handler]:
        return self._decorator("PUT", template, **kw)

    def patch(self, template: str, **kw: object) -> Callable[[Handler], Handler]:
        return self._decorator("PATCH", template, **kw)

    def delete(self, template: str, **kw: object) -> Callable[[Handler], Handler]:
        return self._decorator("DELETE", template, **kw)

    def post(self, template: str, **kw: object) -> Callable[[Handler], Handler]:
        return self._decorator("POST", template, **kw)


class Router:
    """Every route of every provider."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.namespaces: dict[str, ProviderRoutes] = {}

    def provider(self, namespace: str, api_versions: Iterable[str]) -> ProviderRoutes:
        """Routes for ``namespace`` (e.g. ``Microsoft.Compute``) accepting ``api_versions`` by default.

        Several modules may register routes for the same namespace; each gets its own api-version default.
        """
        routes = ProviderRoutes(self, namespace, api_versions)
        self.namespaces.setdefault(namespace.lower(), routes)
        return routes

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The best route for ``method`` + ``path``, with its parameters; None when nothing matches."""
        parts = split_path(path)
        best: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            if route.method != method:
                continue
            params = route.match(parts)
            if params is not None and (best is None or route.specificity > best[0].specificity):
                best = (route, params)
        return best

    def path_known(self, path: str) -> bool:
        """True when some route (any method) matches ``path``."""
        parts = split_path(path)
        return any(route.match(parts) is not None for route in self.routes)

    def knows_namespace(self, namespace: str) -> bool:
        return namespace.lower() in self.namespaces
