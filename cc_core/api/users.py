"""User management (upstream ``internal/api/user.go``, contract §1.3).

Two doors to the same operations: ``/api/users/`` and ``/api/user/{id}`` for tokens with ``admin`` and
``api`` (JSON), and ``/config/users/``, ``/config/user/{id}``, ``/config/roles/`` for an admin's login
session (HTML form fields, as the settings page sends them). Domain refusals (invalid role, role
already present, removing ``manager`` while projects remain, project changes of a non-manager, a
taken username) are 422 as upstream; malformed input is 400.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import HttpMethod, Request, Response, Router, delete, get, post, route
from litestar.datastructures import UploadFile
from litestar.exceptions import PermissionDeniedException
from litestar.params import Parameter

from cc_core.api.auth import AuthGroup, admin_api_guard, current_user, group_opt
from cc_core.api.errors import APIError
from cc_core.api.jobs import decode_body
from cc_core.api.openapi import (
    API_SECURITY,
    SESSION_SECURITY,
    DefaultAPIResponse,
    errors,
    form_body,
    json_body,
    text_response,
)
from cc_core.auth.user import VALID_ROLES
from cc_core.db.errors import DBError, InvalidInputError, NotFoundError

MAX_USERNAME = 100


class APIReturnedUser(msgspec.Struct, rename="camel"):
    """A user as upstream's user list shows it (never the password)."""

    username: str
    name: str
    roles: list[str]
    auth_type: int
    auth_source: int
    email: str
    projects: list[str]


class UpdateUserAPIRequest(msgspec.Struct, rename="kebab", forbid_unknown_fields=True):
    """The first non-empty field is applied."""

    add_role: str = ""
    remove_role: str = ""
    add_project: str = ""
    remove_project: str = ""


class UpdateUserForm(UpdateUserAPIRequest):
    pass


class CreateUserForm(msgspec.Struct):
    username: str
    role: str
    password: str = ""
    name: str = ""
    email: str = ""
    project: str = ""


class DeleteUserForm(msgspec.Struct):
    username: str


_UPDATE = msgspec.json.Decoder(UpdateUserAPIRequest)

# The filter of both user listings (`/api/users/` and `/config/users/`).
NotJustUser = Annotated[
    str | None,
    Parameter(query="not-just-user", description="`true`: only users with roles beyond `user`"),
]


def form_value(form: Any, key: str) -> str:
    """A text field of a form (missing → ``""``); a file upload where text belongs is a 400."""
    value = form.get(key)
    if value is None:
        return ""
    if isinstance(value, UploadFile):
        raise APIError(400, f"form field {key!r} must be text")
    return str(value)


def _require_admin(request: Request[Any, Any, Any], what: str) -> None:
    if not current_user(request).has_role("admin"):
        raise PermissionDeniedException(f"only admins are allowed to {what}")


async def _list(request: Request[Any, Any, Any], not_just_user: str | None) -> list[APIReturnedUser]:
    _require_admin(request, "fetch a list of users")
    users = await request.app.state["services"].db.users.list(not_just_user=not_just_user == "true")
    return [
        APIReturnedUser(
            username=u.username,
            name=u.name,
            roles=list(u.roles),
            auth_type=0,
            auth_source=int(u.auth_source),
            email=u.email,
            projects=list(u.projects),
        )
        for u in users
    ]


async def _update(
    request: Request[Any, Any, Any], username: str, req: UpdateUserAPIRequest, suffix: bool
) -> str:
    _require_admin(request, "update a user")
    users = request.app.state["services"].db.users
    ops = (
        ("add_role", users.add_role, "Add Role", "adding role failed"),
        ("remove_role", users.remove_role, "Remove Role", "removing role failed"),
        ("add_project", users.add_project, "Add Project", "adding project failed"),
        ("remove_project", users.remove_project, "Remove Project", "removing project failed"),
    )
    for field, op, label, failure in ops:
        value = getattr(req, field)
        if not value:
            continue
        try:
            await op(username, value)
        except DBError as e:
            raise APIError(422, f"{failure}: {e}") from None
        return f"{label} Success for user {username}" if suffix else f"{label} Success"
    raise APIError(
        400, "no operation specified: must provide add-role, remove-role, add-project, or remove-project"
    )


# ----------------------------------------------------------------------------------------------- /api


@get(
    "/users",
    guards=[admin_api_guard],
    tags=["User"],
    security=API_SECURITY,
    responses=errors(401, 403),
)
async def api_get_users(
    request: Request[Any, Any, Any],
    not_just_user: NotJustUser = None,
) -> list[APIReturnedUser]:
    """All users (needs a token with both ``admin`` and ``api``)."""
    return await _list(request, not_just_user)


@post(
    "/user/{id:str}",
    status_code=200,
    tags=["User"],
    security=API_SECURITY,
    operation_class=json_body(UpdateUserAPIRequest, "one change (the first non-empty field is applied)"),
    responses=errors(400, 401, 403, 422),
)
async def api_update_user(request: Request[Any, Any, Any], id: str) -> DefaultAPIResponse:
    """Add or remove a role or a managed project of user ``id`` (admins only)."""
    _require_admin(request, "update a user")
    req = decode_body(_UPDATE, await request.body())
    return DefaultAPIResponse(msg=await _update(request, id, req, suffix=True))


# -------------------------------------------------------------------------------------------- /config


@get("/config/users", tags=["Config"], security=SESSION_SECURITY, responses=errors(401, 403))
async def config_get_users(
    request: Request[Any, Any, Any],
    not_just_user: NotJustUser = None,
) -> list[APIReturnedUser]:
    """All users (admin session)."""
    return await _list(request, not_just_user)


@route(
    "/config/users",
    http_method=[HttpMethod.POST, HttpMethod.PUT],
    status_code=200,
    tags=["Config"],
    security=SESSION_SECURITY,
    operation_class=form_body(CreateUserForm, "the new user"),
    responses=text_response(200, "`User <name> successfully created!`") | errors(400, 401, 403, 422),
)
async def config_create_user(request: Request[Any, Any, Any]) -> Response[str]:
    """Create a local user. The password may be empty only for role ``api``; a manager needs a project."""
    _require_admin(request, "create new users")
    form = await request.form()
    username, password, role = (
        form_value(form, "username"),
        form_value(form, "password"),
        form_value(form, "role"),
    )
    name, email, project = form_value(form, "name"), form_value(form, "email"), form_value(form, "project")
    if not username or len(username) > MAX_USERNAME:
        raise APIError(400, f"username must be between 1 and {MAX_USERNAME} characters")
    if not password and role != "api":
        raise APIError(400, "only API users are allowed to have a blank password (login will be impossible)")
    if project and role != "manager":
        raise APIError(400, "only managers require a project (can be changed later)")
    if not project and role == "manager":
        raise APIError(400, "managers require a project to manage (can be changed later)")
    if role not in VALID_ROLES:
        raise APIError(422, f"adding user failed: invalid role {role!r} (valid: {', '.join(VALID_ROLES)})")
    try:
        await request.app.state["services"].db.users.add(
            username,
            password=password or None,
            roles=[role],
            projects=[project] if project else [],
            name=name,
            email=email,
        )
    except (InvalidInputError, DBError) as e:
        raise APIError(422, f"adding user failed: {e}") from None
    return Response(f"User {username} successfully created!\n", media_type="text/plain")


@delete(
    "/config/users",
    status_code=200,
    tags=["Config"],
    security=SESSION_SECURITY,
    operation_class=form_body(DeleteUserForm, "the user to delete"),
    responses=text_response(200, "deleted") | errors(401, 403, 422),
)
async def config_delete_user(request: Request[Any, Any, Any]) -> Response[str]:
    """Delete a user and their UI settings."""
    _require_admin(request, "delete a user")
    username = form_value(await request.form(), "username")
    try:
        await request.app.state["services"].db.users.delete(username)
    except (NotFoundError, DBError) as e:
        raise APIError(422, f"deleting user failed: {e}") from None
    return Response(f"User {username} successfully deleted\n", media_type="text/plain")


@post(
    "/config/user/{id:str}",
    status_code=200,
    tags=["Config"],
    security=SESSION_SECURITY,
    operation_class=form_body(UpdateUserForm, "one change (the first non-empty field is applied)"),
    responses=errors(400, 401, 403, 422),
)
async def config_update_user(request: Request[Any, Any, Any], id: str) -> DefaultAPIResponse:
    """Add or remove a role or a managed project of user ``id``."""
    _require_admin(request, "update a user")
    form = await request.form()
    req = UpdateUserAPIRequest(
        add_role=form_value(form, "add-role"),
        remove_role=form_value(form, "remove-role"),
        add_project=form_value(form, "add-project"),
        remove_project=form_value(form, "remove-project"),
    )
    return DefaultAPIResponse(msg=await _update(request, id, req, suffix=False))


@get("/config/roles", tags=["Config"], security=SESSION_SECURITY, responses=errors(401, 403))
async def config_get_roles(request: Request[Any, Any, Any]) -> list[str]:
    """The roles a user can be given."""
    _require_admin(request, "fetch a list of roles")
    return list(VALID_ROLES)


def user_routers() -> list[Router]:
    return [
        Router(path="/api", route_handlers=[api_get_users, api_update_user], opt=group_opt(AuthGroup.API)),
        Router(
            path="/",
            route_handlers=[
                config_get_users,
                config_create_user,
                config_delete_user,
                config_update_user,
                config_get_roles,
            ],
            opt=group_opt(AuthGroup.CONFIG),
        ),
    ]
