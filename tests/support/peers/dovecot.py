"""A throw-away Dovecot 2.3 IMAP server for tests (Debian's dovecot-imapd, run as root).

Each call writes its own config under a temporary directory and never reads /etc/dovecot.
Pitfalls this avoids: login processes refuse to run as
root (they use Debian's `dovenull` and `dovecot` users), mail processes run as Debian's `mail`
user (uid 8, so ``first_valid_uid`` admits it) chrooted into the mail root (pytest's 0700
temporary directories), ``chroot =`` is empty for the login and anvil services, and the
whole process group is signalled on stop (killing only the master leaves sessions serving).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port

CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = mailgate-test-{port}
log_path = {base}/dovecot.log
auth_verbose = yes
disable_plaintext_auth = no
auth_mechanisms = plain login{mechanisms}
auth_failure_delay = 0
{ssl}
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = 1
valid_chroot_dirs = {mailroot}
mail_location = maildir:~/Maildir
default_login_user = dovenull
default_internal_user = dovecot
{oauth_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mailroot}/./%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
service auth {{
  user = root
}}
{namespace}"""
SSL_ON = "ssl = yes\nssl_cert = <{base}/cert.pem\nssl_key = <{base}/key.pem"
# OAuth 2.0 bearer tokens (XOAUTH2, OAUTHBEARER) checked by RFC 7662 introspection; a password
# that is no active token falls through to the passwd-file passdb below.
OAUTH_PASSDB = """passdb {{
  driver = oauth2
  args = {base}/oauth2.conf.ext
}}
"""
OAUTH_CONF = """introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
"""
# RFC 6154 special-use folders under names of the test's choosing (Outlook's "Deleted Items" as \\Trash, say).
NAMESPACE = """namespace inbox {{
  inbox = yes
{mailboxes}}}
"""
SPECIAL_MAILBOX = """  mailbox "{name}" {{
    auto = create
    special_use = {use}
  }}
"""


class DovecotMissing(RuntimeError):
    pass


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None and os.geteuid() == 0


@dataclass
class Dovecot:
    root: Path
    port: int
    tls_port: int
    process: subprocess.Popen[bytes]
    users: dict[str, str]
    special_use: dict[str, str] | None = None

    @property
    def conf(self) -> Path:
        return self.root / "dovecot" / "dovecot.conf"

    @property
    def ca_file(self) -> Path:
        return self.root / "dovecot" / "cert.pem"

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            ["doveadm", "-c", str(self.conf), *args], capture_output=True, text=True, check=True, timeout=30
        )
        return done.stdout

    def log(self) -> str:
        path = self.root / "dovecot" / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, graceful: bool = True) -> None:
        # The whole group: a master killed alone leaves its sessions serving open connections.
        if graceful and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        """Start again on the same mail and ports (after ``stop``)."""
        fresh = start_dovecot(
            self.root, self.users, port=self.port, tls_port=self.tls_port, special_use=self.special_use
        )
        self.process = fresh.process


def _make_cert(base: Path) -> None:
    from tests.support.peers.certs import write_self_signed

    write_self_signed(base / "cert.pem", base / "key.pem")


def _ready(process: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(200).startswith(b"* OK"):
                    return True
        except OSError:
            pass
        time.sleep(0.01)
    raise TimeoutError(f"dovecot did not greet on port {port}")


def start_dovecot(
    root: Path,
    users: dict[str, str] | None = None,
    *,
    port: int | None = None,
    tls_port: int | None = None,
    timeout: float = 10.0,
    oauth_introspection: str | None = None,
    oauth_mechanisms: str = "xoauth2 oauthbearer",
    special_use: dict[str, str] | None = None,
) -> Dovecot:
    """Dovecot on 127.0.0.1: plain IMAP on ``port``, implicit TLS (self-signed) on ``tls_port``;
    ``special_use`` maps folder names to RFC 6154 attributes (``{"Deleted Items": "\\Trash"}``)."""
    if not dovecot_available():
        raise DovecotMissing("dovecot is not installed (apt-get install dovecot-imapd) or not running as root")
    users = users or {"alice": "secret1", "bob": "secret2"}
    base, mailroot = root / "dovecot", root / "mail"
    (base / "run").mkdir(parents=True, exist_ok=True)
    mailroot.mkdir(parents=True, exist_ok=True)
    mail = pwd.getpwnam("mail")
    os.chown(mailroot, mail.pw_uid, mail.pw_gid)
    for name in users:
        home = mailroot / name
        home.mkdir(exist_ok=True)
        os.chown(home, mail.pw_uid, mail.pw_gid)
        home.chmod(0o700)
    (base / "users").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in users.items()))
    (base / "users").chmod(0o600)
    if not (base / "cert.pem").exists():
        _make_cert(base)
    fixed = port is not None
    for _ in range(1 if fixed else 5):
        chosen, chosen_tls = port or free_port(), tls_port or free_port()
        conf = base / "dovecot.conf"
        conf.write_text(
            CONFIG.format(
                base=base,
                mailroot=mailroot,
                port=chosen,
                tls_port=chosen_tls,
                uid=mail.pw_uid,
                gid=mail.pw_gid,
                ssl=SSL_ON.format(base=base),
                mechanisms=f" {oauth_mechanisms}" if oauth_introspection else "",
                oauth_passdb=OAUTH_PASSDB.format(base=base) if oauth_introspection else "",
                namespace=NAMESPACE.format(
                    mailboxes="".join(SPECIAL_MAILBOX.format(name=n, use=u) for n, u in special_use.items())
                )
                if special_use
                else "",
            )
        )
        if oauth_introspection:
            (base / "oauth2.conf.ext").write_text(OAUTH_CONF.format(url=oauth_introspection))
            (base / "oauth2.conf.ext").chmod(0o600)
        with (base / "stderr.log").open("ab") as err:
            process = subprocess.Popen(
                ["dovecot", "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        if _ready(process, chosen, time.monotonic() + timeout):
            return Dovecot(root, chosen, chosen_tls, process, users, special_use)
        process.wait()
        log = (base / "dovecot.log").read_text(errors="replace") if (base / "dovecot.log").exists() else ""
        if fixed or "Address already in use" not in log:
            raise RuntimeError("dovecot failed to start:\n" + log + (base / "stderr.log").read_text(errors="replace"))
    raise RuntimeError("no free port for dovecot")
