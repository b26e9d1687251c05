"""A ClickHouse-HTTP-compatible front over the in-process ClickHouse of PyPI `chdb-core`.

Debian packages only ClickHouse 18.16 and the registries this project reaches carry no current
server binary; `chdb-core` is the current engine (26.x) as a Python module. The tests start this
front on a free loopback port and point troupe's ClickHouse store at it, so every statement troupe
sends is parsed, planned and run by current ClickHouse.

What it serves of ClickHouse's HTTP interface (what troupe uses):
  GET /ping                      -> "Ok."
  POST /?query=...&database=...  statement in `query`, data (an INSERT's rows) in the body
  POST /?database=...            statement in the body
  multipart/form-data            `query` field plus external tables (`<name>_structure` in the URL)
  settings as URL parameters, credentials as basic auth, X-ClickHouse-User/Key or user/password
  errors as ClickHouse sends them: "Code: N. DB::Exception: ..." with X-ClickHouse-Exception-Code
  X-ClickHouse-Summary with the rows and bytes a statement read

What it does not cover (tested on Debian's 18.16 server only): the native TCP protocol, hence
Distributed tables and clusters (one front is one node); system.query_log; concurrency inside the
engine (statements run one at a time: chdb holds one session per process).

Usage: python chdb_front.py PORT DATA_DIR PARENT_PID [USER:PASSWORD ...]
The front exits (and removes DATA_DIR) when the process PARENT_PID is gone.
"""

import base64
import email.parser
import email.policy
import http.server
import json
import os
import re
import shutil
import sys
import threading
import time
import urllib.parse

try:
    from chdb import session as chdb_session
except ImportError as e:  # pragma: no cover - reported to the test harness
    sys.stderr.write(f"chdb-core is not installed for {sys.executable} ({e}); scripts/setup-test-deps installs it\n")
    sys.exit(3)

# URL parameters that are not settings.
NOT_SETTINGS = {"query", "database", "user", "password", "default_format"}
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CODE = re.compile(r"Code: (\d+)")
# ClickHouse's HTTP status for some exception codes; everything else is 500.
STATUS_OF_CODE = {62: 400, 60: 404, 81: 404, 516: 403, 192: 403, 194: 403}


class ChError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Engine:
    """One chdb session; statements run one at a time under a lock."""

    def __init__(self, path, users):
        self.session = chdb_session.Session(path)
        self.lock = threading.Lock()
        self.users = users
        # A session keeps what SET changed: settings a request does not carry go back to their
        # defaults, as on a server, where settings in the URL last for one request.
        self.defaults = {}
        self.changed = set()

    def apply_settings(self, settings):
        given = dict(settings)
        for name in list(self.changed):
            if name not in given:
                self.session.query(f"SET {name} = {quote_setting(self.defaults[name])}")
                self.changed.discard(name)
        for name, value in given.items():
            if name not in self.defaults:
                row = self.session.query(
                    f"SELECT value FROM system.settings WHERE name = {quote_setting(name)}", "TabSeparated")
                self.defaults[name] = row.bytes().decode().rstrip("\n")
            self.session.query(f"SET {name} = {quote_setting(value)}")
            self.changed.add(name)

    def check_user(self, user, password):
        if self.users.get(user) != password:
            raise ChError(516, f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                               "or there is no user with such name. (AUTHENTICATION_FAILED)")

    def run(self, database, settings, statement, external):
        with self.lock:
            try:
                self.apply_settings(settings)
                if database:
                    self.session.query(f"USE {quote_identifier(database)}")
                else:
                    self.session.query("USE default")
                for name, structure, rows in external:
                    self.session.query(f"DROP TEMPORARY TABLE IF EXISTS {name}")
                    self.session.query(f"CREATE TEMPORARY TABLE {name} ({structure})")
                    if rows:
                        self.session.query(f"INSERT INTO {name} FORMAT TabSeparated\n{rows}")
                try:
                    result = self.session.query(statement, "JSONEachRow")
                finally:
                    for name, _, _ in external:
                        self.session.query(f"DROP TEMPORARY TABLE IF EXISTS {name}")
            except ChError:
                raise
            except Exception as e:  # chdb raises its own error type with ClickHouse's text
                text = str(e)
                match = CODE.search(text)
                raise ChError(int(match.group(1)) if match else 1000, text if match else f"Code: 1000. DB::Exception: {text}")
            return result.bytes(), result.rows_read(), result.bytes_read()


def quote_setting(value):
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name):
    if not TABLE_NAME.match(name):
        raise ChError(81, f"Code: 81. DB::Exception: Database {name} does not exist. (UNKNOWN_DATABASE)")
    return name


def parse_multipart(content_type, body):
    """Fields of a multipart/form-data body: name -> bytes."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = part.get_payload(decode=True) or b""
    return fields


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every reply.
    disable_nagle_algorithm = True
    engine = None

    def log_message(self, *args):  # quiet: the tests read replies, not this log
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/ping", "/"):
            return self.reply(200, b"Ok.\n")
        self.handle_statement(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.handle_statement(body)

    def credentials(self, params):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode("utf-8", "replace").partition(":")
            return user, password
        if self.headers.get("X-ClickHouse-User"):
            return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        return params.get("user", "default"), params.get("password", "")

    def handle_statement(self, body):
        query = urllib.parse.urlsplit(self.path).query
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        try:
            self.engine.check_user(*self.credentials(params))
            content_type = self.headers.get("Content-Type", "")
            external = []
            if content_type.startswith("multipart/form-data"):
                fields = parse_multipart(content_type, body)
                statement = fields.pop("query", b"").decode("utf-8")
                for name, rows in fields.items():
                    structure = params.get(f"{name}_structure")
                    if structure is None or not TABLE_NAME.match(name):
                        raise ChError(117, f"Code: 117. DB::Exception: no structure for external table {name}")
                    external.append((name, structure, rows.decode("utf-8")))
            elif "query" in params:
                statement = params["query"] + ("\n" + body.decode("utf-8") if body else "")
            else:
                statement = body.decode("utf-8")
            settings = [(k, v) for k, v in pairs
                        if k not in NOT_SETTINGS and not k.endswith("_structure") and SETTING_NAME.match(k)]
            output, rows_read, bytes_read = self.engine.run(params.get("database"), settings, statement, external)
        except ChError as e:
            status = STATUS_OF_CODE.get(e.code, 500)
            return self.reply(status, (str(e) + "\n").encode(), [("X-ClickHouse-Exception-Code", str(e.code))])
        summary = json.dumps({"read_rows": str(rows_read), "read_bytes": str(bytes_read)})
        self.reply(200, output, [("X-ClickHouse-Summary", summary),
                                 ("Content-Type", "application/x-ndjson; charset=UTF-8")])


def parent_alive(parent):
    """Whether `parent` still runs: a process that exited stays a zombie until reaped, and
    signalling a zombie succeeds, so its state is read too."""
    try:
        with open(f"/proc/{parent}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1:2] for line in status)
    except OSError:
        return False


def watch_parent(parent, data_dir, engine):
    while parent_alive(parent):
        time.sleep(0.5)
    # Close the engine before removing its files (its background threads would write them
    # again), then leave at once.
    with engine.lock:
        try:
            engine.session.close()
        except Exception:
            pass
        shutil.rmtree(data_dir, ignore_errors=True)
        os._exit(0)


def main():
    port, data_dir, parent = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    users = {"default": ""}
    for pair in sys.argv[4:]:
        user, _, password = pair.partition(":")
        users[user] = password
    os.makedirs(data_dir, exist_ok=True)
    Handler.engine = Engine(os.path.join(data_dir, "chdb"), users)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=watch_parent, args=(parent, data_dir, Handler.engine), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
