"""The gRPC management API: one servicer class per Scalekit service, one module each (clients.py
takes the resource-side RPCs of ClientService from resource_clients.py). grpc_server.py serves them
behind authentication; base.py holds what they share. To add a service, write its class and list it
in SERVICERS.
"""
from __future__ import annotations

import grpc

from .api_tokens import ApiTokenService
from .auth import AuthService
from .clients import ClientService
from .connections import ConnectionService
from .directories import DirectoryService
from .domains import DomainService
from .events import EventsService
from .organizations import OrganizationService
from .passwordless import PasswordlessService
from .roles import RolesService
from .sessions import SessionService
from .users import UserService
from .webauthn import WebAuthnService

SERVICERS = (OrganizationService, AuthService, ConnectionService, DomainService, DirectoryService, UserService,
             RolesService, SessionService, ClientService, ApiTokenService, PasswordlessService, WebAuthnService,
             EventsService)


def register_all(server: grpc.Server, ctx) -> None:
    for servicer_class in SERVICERS:
        servicer_class.add_to_server(servicer_class(ctx), server)
