#!/usr/bin/env python3
"""A TLS front for s3sim, which speaks plain HTTP only: accepts HTTPS on 127.0.0.1 and passes each
connection's bytes to s3sim and back. scripts/bench.py runs it to measure what TLS costs a client
(its CPU is its own process's, not the client's).

    tls_proxy.py --upstream 127.0.0.1:9000 --cert cert.pem --key key.pem --addr-file addr
    tls_proxy.py --upstream 127.0.0.1:9000 --plain --addr-file addr   # the same, without TLS

The certificate is one's own (`openssl req -x509 … -addext subjectAltName=IP:127.0.0.1`); a client
trusts it through SSL_CERT_FILE (rustls-native-certs, hence s3rewind) or is told not to verify.
"""
import argparse
import asyncio
import ssl


async def pump(reader, writer):
    try:
        while True:
            data = await reader.read(1 << 16)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="host:port of the plain-HTTP server")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--plain", action="store_true", help="no TLS: a plain pass-through (the control)")
    ap.add_argument("--addr-file", required=True, help="write the bound host:port here once listening")
    args = ap.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    context = None
    if not args.plain:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    async def serve(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pump(client_reader, up_writer), pump(up_reader, client_writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context, backlog=4096)
    bound = server.sockets[0].getsockname()
    with open(args.addr_file, "w") as f:
        f.write(f"{bound[0]}:{bound[1]}")
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
