"""What the test servers in tests/tools share (stdlib only): reading a request
body in bounded pieces, forwarding a body as it is or re-chunked, a
timestamped log line, and announcing the port before serving.

The servers run as scripts (python3 tests/tools/NAME.py), so their own
folder is on sys.path and `import toolslib` finds this file.
"""

import os
import time

PIECE = 64 * 1024


def body_pieces(rfile, headers, piece=PIECE):
    """Yields a request body read from rfile in pieces of at most piece
    bytes, de-chunked when Transfer-Encoding says chunked (trailers are read
    and dropped). Raises ConnectionError when the body is cut short."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        while True:
            line = rfile.readline(1024)
            if not line:
                raise ConnectionError("request body cut short")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from _exactly(rfile, size, piece)
            rfile.readline(8)
    else:
        yield from _exactly(rfile, int(headers.get("Content-Length") or 0), piece)


def _exactly(rfile, left, piece):
    """Yields the next left bytes of rfile in pieces of at most piece bytes."""
    while left:
        data = rfile.read(min(left, piece))
        if not data:
            raise ConnectionError("request body cut short")
        left -= len(data)
        yield data


def send_pieces(write, pieces, chunked):
    """Writes every piece through write (a socket's send, a file's write),
    each as one chunk when chunked, then the last chunk."""
    for piece in pieces:
        if piece:
            write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    if chunked:
        write(b"0\r\n\r\n")


def response_pieces(resp, piece=PIECE):
    """Yields an http.client response's body in pieces of at most piece bytes."""
    while True:
        data = resp.read(piece)
        if not data:
            return
        yield data


def log_line(f, lock, line):
    """Appends line to f under lock, after the local time to the millisecond."""
    with lock:
        now = time.time()
        f.write(time.strftime("%H:%M:%S", time.localtime(now)) +
                f".{int(now * 1000) % 1000:03d} " + line + "\n")
        f.flush()


def serve(httpd, ready_file):
    """Writes the listening port to ready_file (atomically, if given), then
    serves until interrupted."""
    if ready_file:
        tmp = ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{httpd.server_address[1]}\n")
        os.replace(tmp, ready_file)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
