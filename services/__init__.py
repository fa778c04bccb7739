"""The HTTP microservices. `services.common` is what they share; each other folder is one service."""
