"""HTTP APIs: REST controllers, error bodies, security middleware and guards."""
