from tests.email.servers import smtp_server

__all__ = ["smtp_server"]
