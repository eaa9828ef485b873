"""TEMPORARY: a token table standing in for the auth service until the auth branch lands on main."""

from __future__ import annotations

from nutcracker.api.principal import AuthError, Principal, StepUpAction


class TokenTable:
    def __init__(self) -> None:
        self.tokens: dict[str, Principal] = {}
        self.step_ups: dict[str, tuple[str, StepUpAction]] = {}

    def authenticate(self, access_token: str) -> Principal:
        principal = self.tokens.get(access_token)
        if principal is None:
            raise AuthError(401, "invalid token")
        return principal

    def check_step_up(self, principal: Principal, step_up_token: str, action: StepUpAction) -> None:
        if self.step_ups.get(step_up_token) != (principal.user, action):
            raise AuthError(403, "step-up token not valid for this action")
