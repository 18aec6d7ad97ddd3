#!/usr/bin/python3
"""hello-http: answers every GET with a greeting, on IPv6 and/or IPv4.

Standard library only. One thread per listening address; stops on SIGTERM.
"""
import argparse
import os
import http.server
import signal
import socket
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('Hello from %s\n' % self.server.title).encode()
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; charset=utf-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        sys.stderr.write('%s %s\n' % (self.address_string(), format % args))


class Server4(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET


class Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--ipv4')
    parser.add_argument('--ipv6')
    parser.add_argument('--port', type=int, default=8080)
    parser.add_argument('--title', default='hello-http')
    parser.add_argument('--ready-file', help='written with our pid once every address is bound')
    args = parser.parse_args()
    servers = []
    if args.ipv6:
        servers.append(Server6((args.ipv6, args.port), Handler))
    if args.ipv4:
        servers.append(Server4((args.ipv4, args.port), Handler))
    if not servers:
        parser.error('give --ipv4 and/or --ipv6')
    for server in servers:
        server.title = args.title
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print('hello-http listening on %s port %d' % server.server_address[:2], flush=True)
    if args.ready_file:
        tmp = args.ready_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % os.getpid())
        os.rename(tmp, args.ready_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.shutdown()
    if args.ready_file:
        try:
            os.unlink(args.ready_file)
        except FileNotFoundError:
            pass


if __name__ == '__main__':
    main()
