"""Settings from ``MAILGATE_*`` environment variables and an optional TOML file (``MAILGATE_CONFIG``).

`Settings` (core.py) is what every process reads; a ``[[mailboxes]]`` entry is a `MailboxEntry`
(mailbox.py) and the ``[notifications]`` table `NotificationSettings` (notifications.py).
"""

from server.settings.common import MIN_SECRET_CHARS, MIN_TOKEN_CHARS, SettingsError
from server.settings.core import Settings, load_settings
from server.settings.mailbox import MailboxEntry
from server.settings.notifications import NotificationSettings

__all__ = [
    "MIN_SECRET_CHARS",
    "MIN_TOKEN_CHARS",
    "MailboxEntry",
    "NotificationSettings",
    "Settings",
    "SettingsError",
    "load_settings",
]
