"""The thin HTTP gateway: authenticate, validate, publish; read from Redis."""
