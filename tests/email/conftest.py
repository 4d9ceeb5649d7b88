from tests.email.servers import _ses_server_process, ses_server, smtp_server

__all__ = ["_ses_server_process", "ses_server", "smtp_server"]
