"""The API's routers, one per area; ``api.app.create_app`` includes them under ``/api/v1``."""
