"""Caller identity for the HTTP routes: Entra ID access tokens validated in the app (``tokens``)."""
