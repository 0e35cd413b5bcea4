"""Command line: python -m monoz_emulator [options]. See emulator/README.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from typing import Any

from .faults import RATE_KEYS, FaultConfigError, FaultInjector
from .server import Config, run
from .webhook import WebhookConfigError, WebhookSettings, check_headers, check_url

ORG_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _fault_rate(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or key not in RATE_KEYS:
        raise argparse.ArgumentTypeError(f"expected KEY=RATE with KEY in {', '.join(RATE_KEYS)}")
    try:
        return key, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate {value!r} is not a number") from None


def _script_entry(text: str) -> Any:
    text = text.strip()
    return int(text) if text.isdigit() else text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m monoz_emulator", description="Local emulator of the Monoz Link downlink API.")
    p.add_argument("--host", default="127.0.0.1", help="bind address for HTTP and MQTT (default 127.0.0.1; keep it loopback)")
    p.add_argument("--port", type=int, default=8580, help="HTTP port, 0 = pick a free one (default 8580)")
    p.add_argument("--mqtt-port", type=int, default=0, help="MQTT broker port, 0 = pick a free one (default 0)")
    p.add_argument("--org", action="append", help="org ID (repeatable, paired in order with --api-key; default DEMO)")
    p.add_argument("--api-key", action="append", help="API key of the matching --org (default demo-api-key)")
    p.add_argument("--devices", type=int, default=10, help="number of generated devices per org (default 10)")
    p.add_argument("--device-prefix", default="89882806660", help="digit prefix of generated ICCIDs")
    p.add_argument("--extra-device", action="extend", nargs="+", default=[], metavar="ICCID", help="register these ICCIDs too")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added latency per Publish request")
    p.add_argument("--rate-limit", type=float, default=0.0, help="server rate limit in requests/s (429 beyond), 0 = off")
    p.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds on injected 429/503 (default 1)")
    p.add_argument("--fault-rate", action="append", type=_fault_rate, default=[], metavar="KEY=RATE",
                   help=f"random fault share, KEY in {', '.join(RATE_KEYS)} (repeatable), e.g. 503=0.1")
    p.add_argument("--fault-script", default="", metavar="E1,E2,...",
                   help="comma-separated fault entries consumed one per request, e.g. 503,503,drop")
    p.add_argument("--faults", metavar="JSON", help="full fault settings as JSON (same body as PUT /_emulator/faults); "
                   "the other fault flags override its keys")
    p.add_argument("--seed", type=int, default=None, help="seed for random faults")
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", help="private key for --tls-cert (PEM)")
    p.add_argument("--ready-file", help="also write the ready JSON line to this file")
    p.add_argument("--no-mqtt", action="store_true", help="no broker and no device subscriber (HTTP side only)")
    p.add_argument("--mqtt-broker", metavar="HOST:PORT",
                   help="use this MQTT broker (e.g. mosquitto) instead of the embedded amqtt one")
    p.add_argument("--webhook-url", help="push device uplinks to this URL, the way Monoz Link's webhook integration does")
    p.add_argument("--webhook-header", action="append", default=[], metavar="'Name: value'",
                   help="header sent with every push, e.g. 'Authorization: Bearer T' (repeatable)")
    p.add_argument("--webhook-timeout", type=float, default=90.0,
                   help="seconds to wait for the webhook's answer before a retry (default 90)")
    p.add_argument("--webhook-block-after", type=int, default=10,
                   help="consecutive failed pushes after which pushes stop until unblocked (default 10)")
    p.add_argument("--webhook-cafile", help="CA bundle (PEM) to verify an https webhook with")
    p.add_argument("--uplink-interval", type=float, default=0.0,
                   help="every enabled device publishes an uplink every S seconds (default 0 = never)")
    p.add_argument("--log-level", default="WARNING", help="log level on stderr (default WARNING)")
    return p


def config_from_args(argv: list[str] | None = None) -> Config:
    parser = build_parser()
    args = parser.parse_args(argv)
    orgs = args.org or ["DEMO"]
    keys = args.api_key or ["demo-api-key"]
    if len(keys) == 1 and len(orgs) > 1:
        keys = keys * len(orgs)
    if len(keys) != len(orgs):
        parser.error("give one --api-key per --org (or a single key for all)")
    for org in orgs:
        if not ORG_RE.fullmatch(org):
            parser.error(f"--org {org!r}: use letters, digits, '_' or '-'")
    if args.devices < 0:
        parser.error("--devices must be >= 0")
    if not args.device_prefix.isdigit():
        parser.error("--device-prefix must be digits")
    for iccid in args.extra_device:
        if not re.fullmatch(r"[0-9]{1,22}", iccid):
            parser.error(f"--extra-device {iccid!r}: an ICCID is 1 to 22 digits")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    mqtt_broker = None
    if args.mqtt_broker:
        if args.no_mqtt:
            parser.error("--mqtt-broker and --no-mqtt exclude each other")
        host, sep, port = args.mqtt_broker.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            parser.error(f"--mqtt-broker {args.mqtt_broker!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
        mqtt_broker = (host.strip("[]"), int(port))
    if args.uplink_interval < 0:
        parser.error("--uplink-interval must be >= 0")
    if args.webhook_timeout <= 0:
        parser.error("--webhook-timeout must be > 0")
    if args.webhook_block_after < 1:
        parser.error("--webhook-block-after must be >= 1")
    headers = {}
    for header in args.webhook_header:
        name, sep, value = header.partition(":")
        if not sep:
            # The value may be a secret: do not echo it.
            parser.error("a --webhook-header has no ':'; expected 'Name: value'")
        headers[name.strip()] = value.strip()
    try:
        webhook = WebhookSettings(url=check_url(args.webhook_url), headers=check_headers(headers),
                                  timeout=args.webhook_timeout, block_after=args.webhook_block_after,
                                  cafile=args.webhook_cafile)
    except WebhookConfigError as exc:
        parser.error(f"webhook: {exc}")

    faults: dict[str, Any] = {}
    if args.faults:
        try:
            faults = json.loads(args.faults)
        except json.JSONDecodeError as exc:
            parser.error(f"--faults is not valid JSON: {exc}")
        if not isinstance(faults, dict):
            parser.error("--faults must be a JSON object")
    if args.latency_ms:
        faults["latency_ms"] = args.latency_ms
    if args.rate_limit:
        faults["rate_limit"] = args.rate_limit
    if args.retry_after != 1 or "retry_after" not in faults:
        faults["retry_after"] = args.retry_after
    if args.fault_rate:
        faults["rates"] = {**faults.get("rates", {}), **dict(args.fault_rate)}
    if args.fault_script:
        faults["script"] = [_script_entry(e) for e in args.fault_script.split(",") if e.strip()]
    if args.seed is not None:
        faults["seed"] = args.seed
    try:
        FaultInjector().apply(faults)  # validate now, fail before binding anything
    except FaultConfigError as exc:
        parser.error(f"fault settings: {exc}")

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # amqtt is chatty at INFO; keep it at WARNING unless asked for DEBUG.
    if args.log_level.upper() != "DEBUG":
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        logging.getLogger("transitions").setLevel(logging.WARNING)

    return Config(
        host=args.host,
        port=args.port,
        mqtt_port=args.mqtt_port,
        orgs=dict(zip(orgs, keys)),
        devices=args.devices,
        device_prefix=args.device_prefix,
        extra_devices=list(args.extra_device),
        faults=faults,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        ready_file=args.ready_file,
        mqtt=not args.no_mqtt,
        mqtt_broker=mqtt_broker,
        webhook=webhook,
        uplink_interval=args.uplink_interval,
    )


def main(argv: list[str] | None = None) -> int:
    config = config_from_args(argv)
    try:
        asyncio.run(run(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
