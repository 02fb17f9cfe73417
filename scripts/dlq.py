"""``python -m scripts.dlq``: the operator's tool for ``failed.queue``.

    list [--limit N] [--json]     the dead letters at the head of the queue (left in place)
    show ID                       one dead letter in full: x-death, options, body, attempts
    replay --id ID | --all        back onto email.queue/push.queue with a fresh retry budget
    purge [--yes]                 drop every dead letter (their notifications stay ``failed``)

It uses the same environment as the other processes (``RABBITMQ_URL``, ``DATABASE_URL``,
``REDIS_URL``, ...). Exit status: 0 done, 1 nothing matched or a replay failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from logs import setup_logging
from messaging import dead_letters
from messaging.rabbitmq import HeraldBroker
from models.base import bind_databases
from models.redis_client import sync_client
from models.redis_keys import RedisKeys
from models.status_writer import StatusWriter
from settings import Settings, load_or_exit

COLUMNS = ("notification_id", "notification_type", "failed_at", "retry_count", "reason", "error")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m scripts.dlq", description="Work Herald's dead-letter queue.")
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="list the dead letters (they stay in the queue)")
    listing.add_argument("--limit", type=int, default=100, help=f"at most this many (up to {dead_letters.MAX_SCAN})")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = sub.add_parser("show", help="one dead letter in full, as JSON")
    show.add_argument("id", help="the notification id")
    replay = sub.add_parser("replay", help="put dead letters back on their queue")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", help="the notification id to replay")
    which.add_argument("--all", action="store_true", help="every dead letter in the queue now")
    purge = sub.add_parser("purge", help="delete every dead letter")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return p


def _table(items: list[dict]) -> str:
    rows = [[str(item.get(c) if item.get(c) is not None else "-") for c in COLUMNS] for item in items]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def cmd_list(settings: Settings, args) -> int:
    limit = max(1, min(args.limit, dead_letters.MAX_SCAN))
    total, items = dead_letters.listing(settings.rabbitmq_url, page=1, limit=limit)
    if args.json:
        for item in items:
            print(json.dumps(item))
    else:
        print(_table(items))
        print(f"{len(items)} shown of {total} in failed.queue")
    return 0


def cmd_show(settings: Settings, args) -> int:
    found = dead_letters.show(settings.rabbitmq_url, args.id)
    if found is None:
        print(f"no dead letter for {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, default=str))
    return 0


def cmd_replay(settings: Settings, args) -> int:
    broker = HeraldBroker(url=settings.rabbitmq_url, middleware=[])
    redis = sync_client(settings.redis_url)
    status = StatusWriter(redis=redis, keys=RedisKeys(settings.redis_key_prefix))
    replayer = dead_letters.Replayer(publish=broker.enqueue, mirror=status.mirror)
    try:
        if args.all:
            outcomes = replayer.replay_all(settings.rabbitmq_url)
            for outcome, ids in sorted(outcomes.items()):
                print(f"{outcome}: {len(ids)}" + (f" ({', '.join(ids[:20])})" if outcome != "replayed" else ""))
            failed = {k for k in outcomes if k not in (dead_letters.REPLAYED_OK, dead_letters.ALREADY_DELIVERED)}
            return 1 if failed else 0
        try:
            outcome = replayer.replay_one(settings.rabbitmq_url, args.id)
        except dead_letters.ReplayError as exc:
            print(f"{args.id}: not replayed: {exc}", file=sys.stderr)
            return 1
        if outcome is None:
            print(f"no dead letter for {args.id}", file=sys.stderr)
            return 1
        print(f"{args.id}: {outcome}")
        return 0
    finally:
        broker.close()
        redis.close()


def cmd_purge(settings: Settings, args) -> int:
    with dead_letters.DeadLetterQueue(settings.rabbitmq_url) as dlq:
        depth = dlq.depth()
        if not args.yes:
            if not sys.stdin.isatty():
                print(f"{depth} dead letter(s) would be deleted; add --yes to confirm", file=sys.stderr)
                return 2
            answer = input(f"delete {depth} dead letter(s) for good? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        purged = dlq.purge()
    print(f"purged {purged} dead letter(s)")
    return 0


COMMANDS = {"list": cmd_list, "show": cmd_show, "replay": cmd_replay, "purge": cmd_purge}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_or_exit()
    setup_logging(service="dlq", level="WARNING" if settings.log_level == "INFO" else settings.log_level)
    if settings.rabbitmq_url is None:
        print("herald: the dead-letter queue needs RABBITMQ_URL", file=sys.stderr)
        return 2
    dbs = bind_databases(notifications=settings.notifications_database_url)
    try:
        return COMMANDS[args.command](settings, args)
    finally:
        dbs.close()


if __name__ == "__main__":
    sys.exit(main())
