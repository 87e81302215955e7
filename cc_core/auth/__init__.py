"""Authentication and authorization: users, roles, JWTs, guards."""
