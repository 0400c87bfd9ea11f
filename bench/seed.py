"""Seed a fresh benchmark database: `python -m bench.seed --out manifest.json` with DATABASE_URL set.

Everything goes in beside the demo data, never over it:
- one bench account with its own advisors (licensed, tokens for the API) and live-chat-only sites, so new
  conversations start live and no bot answers in the measured path;
- the mixed profile's site (the demo chatbot) and team (`--mixed-advisors`, `--bot-watchers` of them seeing the
  bot's conversations); its visitors are not seeded: they arrive through the widget API during the run;
- `--visitors` visitors with known tokens (only the hash is stored, as the product does), each with an
  escalated (live) conversation assigned to an advisor of its site, holding the visitor's first words and the
  advisor's first reply: the load generator's visitors;
- an archive site with `--archive` conversations of `--per-conversation` messages each (100k x 10 = 1M),
  written with set-based SQL, with the gapless `seq` and every denormalised field the inbox list shows kept
  exactly as the services keep them (last_seq, last_public_seq, last_message, last_public_message,
  last_visitor_seq, last_advisor_seq, updated_at, ...), plus read states for the advisor who lists them, and
  the figures reports aggregate (the escalation's moments on the conversation, one reports_episode row per
  escalated conversation, a rating for one closed conversation in three), spread over the last 90 days;
  then the inbox counts' tallies, which database triggers keep and this set-based write bypasses, are rebuilt.
"""
import argparse
import hashlib
import json
import os
import secrets
import sys
import time
from importlib import import_module


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "livechat.settings")
    import django

    django.setup()


ORIGIN = "http://127.0.0.1:8000"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def seed_people(*, sites: int, advisors: int, mixed_advisors: int = 0, bot_watchers: int = 0) -> dict:
    """The bench account, its load sites and advisors, the archive site and the advisor who lists it."""
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from advisors import services
    from advisors.models import Account, Advisor, Site
    from chatbots.models import Chatbot

    chatbot = Chatbot.objects.filter(name="Demo bot").first()  # for pseudonyms in the archive's list
    with transaction.atomic():
        account = Account.objects.create(name="Bench Company", license_quota=advisors + mixed_advisors + 5)
        load_sites = [Site.objects.create(account=account, name=f"Bench {i}", key=f"bench-{i}",
                                          allowed_origins=[ORIGIN], chatbot=None, livechat_only=True)
                      for i in range(sites)]
        archive = Site.objects.create(account=account, name="Bench archive", key="bench-archive",
                                      allowed_origins=[ORIGIN], chatbot=chatbot, livechat_only=False)
        people = []
        for i in range(advisors):
            site = load_sites[i % sites]
            advisor = services.advisor_create(account=account, username=f"bench-{i}", email=f"bench-{i}@bench.example",
                                              display_name=f"Bench {i}", password=None, sites=[site])
            services.license_grant(advisor=advisor)
            token = Token.objects.create(user=advisor.user)
            people.append({"username": advisor.username, "advisor_id": advisor.pk, "token": token.key,
                           "site_ids": [site.pk]})
        lister = services.advisor_create(account=account, username="bench-lister", email="lister@bench.example",
                                         display_name="Lister", password=None, sites=[archive], sees_chatbot=True)
        services.license_grant(advisor=lister)
        lister_token = Token.objects.create(user=lister.user)
        # The lister owns the account, so the reports measured as the lister cover every advisor (staff), in a
        # time zone that is not UTC (days cut at midnight in Paris).
        Account.objects.filter(pk=account.pk).update(owner=lister.user, timezone="Europe/Paris")
        # Advisors are licensed and do not see bot conversations: they share one audience group per site.
        Advisor.objects.filter(pk__in=[p["advisor_id"] for p in people]).update(sees_chatbot=False)
        # The mixed profile (bench/mixed.py): a site with the demo chatbot, visitors arriving through the widget
        # API, and a team of its own: licensed, `bot_watchers` of them seeing the conversations the bot leads (as
        # alice does in the demo), e-mails on escalation off (the team has the inbox on screen).
        mixed_site = Site.objects.create(account=account, name="Bench mixed", key="bench-mixed",
                                         allowed_origins=[ORIGIN], chatbot=chatbot, livechat_only=False)
        mixed = []
        for i in range(mixed_advisors):
            watcher = i < bot_watchers
            advisor = services.advisor_create(account=account, username=f"mix-{i}", email=f"mix-{i}@bench.example",
                                              display_name=f"Mix {i}", password=None, sites=[mixed_site],
                                              sees_chatbot=watcher)
            services.license_grant(advisor=advisor)
            token = Token.objects.create(user=advisor.user)
            mixed.append({"username": advisor.username, "advisor_id": advisor.pk, "token": token.key,
                          "site_ids": [mixed_site.pk], "sees_chatbot": watcher})
        Advisor.objects.filter(pk__in=[p["advisor_id"] for p in mixed]).update(email_on_escalation=False)
    return {
        "account_id": account.pk,
        "sites": [{"id": s.pk, "key": s.key} for s in load_sites],
        "advisors": people,
        "archive": {"id": archive.pk, "key": archive.key},
        "lister": {"username": "bench-lister", "advisor_id": lister.pk, "token": lister_token.key},
        "mixed": {"site": {"id": mixed_site.pk, "key": mixed_site.key}, "advisors": mixed},
    }


def seed_visitors(cursor, *, count: int, sites: list[dict], advisors: list[dict]) -> list[dict]:
    """`count` visitors with known tokens and a live conversation each, assigned within their site."""
    by_site: dict[int, list[int]] = {}
    for person in advisors:
        for site_id in person["site_ids"]:
            by_site.setdefault(site_id, []).append(person["advisor_id"])
    rows = []
    tokens = []
    for i in range(count):
        site_id = sites[i % len(sites)]["id"]
        site_advisors = by_site[site_id]
        token = f"bench-{i}-{secrets.token_urlsafe(16)}"
        tokens.append(token)
        rows.append((token_hash(token), site_id, site_advisors[(i // len(sites)) % len(site_advisors)]))
    with cursor.copy("COPY conversations_visitor (token_hash, variables, sessions, page, first_seen_at, last_seen_at,"
                     " online_sockets, site_id) FROM STDIN") as copy:
        for i, (hashed, site_id, _) in enumerate(rows):
            copy.write_row((hashed, json.dumps({"PRENOM": f"V{i}", "SOCIETE": "Bench"}), 1, "",
                            "now", "now", 0, site_id))
    cursor.execute("SELECT id, token_hash FROM conversations_visitor WHERE token_hash = ANY(%s)",
                   ([r[0] for r in rows],))
    visitor_ids = dict((h, pk) for pk, h in cursor.fetchall())
    # The escalation's moments as the services set them: escalated, assigned, answered (figures.keep).
    with cursor.copy("COPY conversations_conversation (status, last_seq, last_public_seq, last_visitor_seq,"
                     " last_advisor_seq, back_to_bot_label, waiting_since, created_at, updated_at, assigned_id,"
                     " site_id, visitor_id, escalated_at, assigned_at, first_reply_at) FROM STDIN") as copy:
        for hashed, site_id, advisor_id in rows:
            copy.write_row(("live", 2, 2, 1, 2, "", None, "now", "now", advisor_id, site_id, visitor_ids[hashed],
                            "now", "now", "now"))
    cursor.execute("SELECT visitor_id, id FROM conversations_conversation WHERE visitor_id = ANY(%s)",
                   (list(visitor_ids.values()),))
    conversation_ids = dict(cursor.fetchall())
    # The visitor's first words, as every escalated conversation has them (the words that asked for a human, or the
    # press of the bot's button, stored as the visitor's text): an assigned conversation the visitor never spoke in
    # cannot happen, and its first message took the path of a first message (the escalation's checks) for each
    # of the run's first 1,000 messages. And the advisor's first reply: a conversation is answered once and
    # replied to many times, and without it nearly every reply of a run (a few hundred over 1,000 conversations)
    # would be a first reply, the rare one (it clears the wait and sets the figures).
    cursor.execute(
        """WITH item AS (
               INSERT INTO conversations_message (seq, kind, sender, text, image, image_url, buttons, input, client_id,
                                                  created_at, advisor_id, conversation_id)
               SELECT s.seq, 'text', s.sender, s.text, '', '', '[]'::jsonb, NULL, 'seed-' || s.seq || '-' || c.id,
                      now(), CASE WHEN s.sender = 'advisor' THEN c.assigned_id END, c.id
               FROM conversations_conversation c,
                    (VALUES (1, 'visitor', 'I would like to talk to someone, please'),
                            (2, 'advisor', 'Hello, how can I help?')) AS s (seq, sender, text)
               WHERE c.id = ANY(%s)
               RETURNING id, conversation_id, seq)
           UPDATE conversations_conversation c SET last_message_id = item.id, last_public_message_id = item.id
           FROM item WHERE c.id = item.conversation_id AND item.seq = 2""", (list(conversation_ids.values()),))
    return [{"token": token, "site": site_id, "conversation": conversation_ids[visitor_ids[hashed]],
             "advisor": advisor_id}
            for token, (hashed, site_id, advisor_id) in zip(tokens, rows)]


def seed_archive(cursor, *, site_id: int, advisor_ids: list[int], lister_id: int, conversations: int,
                 per_conversation: int) -> dict:
    """`conversations` x `per_conversation` messages in set-based SQL: 70% closed, 20% live, 10% with the bot.

    Item s of a conversation: odd s the visitor, even s the advisor (the bot in bot conversations); the last
    item is a private note in one conversation of ten, so last_message and last_public_message differ there.
    """
    started = time.monotonic()
    m = per_conversation
    cursor.execute("SET LOCAL synchronous_commit = off")
    # Rows are consistent by construction: skip the per-row foreign-key triggers (a superuser setting, local to
    # this transaction), and build the message table's secondary indexes once at the end rather than row by row.
    cursor.execute("SET LOCAL session_replication_role = replica")
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    cursor.execute("""SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                      WHERE x.indrelid = 'conversations_message'::regclass AND NOT x.indisprimary
                        AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)""")
    deferred_indexes = cursor.fetchall()
    for name, _ in deferred_indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    cursor.execute(
        """INSERT INTO conversations_visitor (token_hash, variables, sessions, page, first_seen_at, last_seen_at,
                                              online_sockets, site_id)
           SELECT 'archive-' || g, jsonb_build_object('PRENOM', 'Jean' || g, 'SOCIETE', 'ACME ' || (g %% 997)),
                  1 + g %% 3, 'https://shop.example/p/' || (g %% 50), ts, ts, 0, %(site)s
           FROM (SELECT g, now() - (random() * interval '90 days') AS ts FROM generate_series(1, %(n)s) g) x""",
        {"site": site_id, "n": conversations})
    cursor.execute(
        """INSERT INTO conversations_conversation (status, last_seq, last_public_seq, last_visitor_seq,
               last_advisor_seq, bot_position, back_to_bot_label, waiting_since, closed_at, created_at, updated_at,
               assigned_id, site_id, visitor_id, escalated_at, assigned_at, first_reply_at, rating_asked)
           SELECT CASE WHEN k < 7 THEN 'closed' WHEN k < 9 THEN 'live' ELSE 'bot' END,
                  %(m)s,
                  CASE WHEN k = 3 THEN %(m)s - 1 ELSE %(m)s END,
                  %(m)s - 1 + %(m)s %% 2,
                  CASE WHEN k = 9 THEN 0 WHEN k = 3 THEN (%(m)s - 1) - (%(m)s - 1) %% 2 ELSE %(m)s - %(m)s %% 2 END,
                  NULL, '',
                  CASE WHEN k BETWEEN 7 AND 8 AND v.id %% 4 = 0 THEN v.first_seen_at END,
                  CASE WHEN k < 7 THEN v.first_seen_at + make_interval(mins => %(m)s + 1) END,
                  v.first_seen_at, v.first_seen_at + make_interval(mins => %(m)s),
                  CASE WHEN k = 9 OR (k BETWEEN 7 AND 8 AND v.id %% 4 = 0) THEN NULL
                       ELSE (%(advisors)s)[1 + v.id %% cardinality(%(advisors)s)] END,
                  %(site)s, v.id,
                  -- escalated up to 2 minutes after the start, taken up to 4 minutes later, answered by item 2
                  CASE WHEN k < 9 THEN v.first_seen_at + make_interval(secs => 30 * (v.id %% 5)) END,
                  CASE WHEN k < 7 OR (k BETWEEN 7 AND 8 AND v.id %% 4 <> 0)
                       THEN v.first_seen_at + make_interval(secs => 30 * (v.id %% 5) + v.id %% 240) END,
                  CASE WHEN k < 9 AND %(m)s >= 2 THEN v.first_seen_at + make_interval(mins => 2) END,
                  false
           FROM (SELECT v.*, (v.id %% 10)::int AS k FROM conversations_visitor v WHERE v.site_id = %(site)s) v""",
        {"m": m, "site": site_id, "advisors": advisor_ids})
    cursor.execute(
        """INSERT INTO conversations_message (seq, kind, sender, text, image, image_url, buttons, input, client_id,
                                              created_at, advisor_id, conversation_id)
           SELECT s,
                  CASE WHEN s > c.last_public_seq THEN 'note' ELSE 'text' END,
                  CASE WHEN s %% 2 = 1 AND s <= c.last_public_seq THEN 'visitor'
                       WHEN c.status = 'bot' THEN 'bot' ELSE 'advisor' END,
                  CASE WHEN s %% 2 = 1 THEN 'Hello, I have a question about order ' || c.id || ' (' || s || ')'
                       ELSE 'Thanks for your message, let me check that for you (' || s || ')' END,
                  '', '', '[]'::jsonb, NULL,
                  CASE WHEN s %% 2 = 1 THEN 'archive-' || c.id || '-' || s END,
                  c.created_at + make_interval(mins => s),
                  CASE WHEN (s %% 2 = 0 OR s > c.last_public_seq) AND c.status <> 'bot'
                       THEN coalesce(c.assigned_id, (%(advisors)s)[1]) END,
                  c.id
           FROM conversations_conversation c CROSS JOIN generate_series(1, %(m)s) s
           WHERE c.site_id = %(site)s
           ORDER BY c.id, s""",
        {"m": m, "site": site_id, "advisors": advisor_ids})
    for _, definition in deferred_indexes:
        cursor.execute(definition)
    # The note case: the last item is a note, so the visitor's and the advisor's last public items come before it.
    cursor.execute(
        """UPDATE conversations_conversation c
           SET last_message_id = last.id, last_public_message_id = pub.id
           FROM conversations_message last, conversations_message pub
           WHERE c.site_id = %(site)s AND last.conversation_id = c.id AND last.seq = c.last_seq
             AND pub.conversation_id = c.id AND pub.seq = c.last_public_seq""", {"site": site_id})
    cursor.execute(
        """UPDATE conversations_conversation c SET last_visitor_seq = x.v, last_advisor_seq = x.a
           FROM (SELECT conversation_id,
                        max(seq) FILTER (WHERE sender = 'visitor') AS v,
                        coalesce(max(seq) FILTER (WHERE sender = 'advisor' AND kind <> 'note'), 0) AS a
                 FROM conversations_message m JOIN conversations_conversation cc ON cc.id = m.conversation_id
                 WHERE cc.site_id = %(site)s GROUP BY conversation_id) x
           WHERE c.id = x.conversation_id""", {"site": site_id})
    # The reports' history: one episode per escalated conversation, a rating for one closed conversation in three.
    cursor.execute(
        """INSERT INTO reports_episode (conversation_id, site_id, escalated_at, assigned_at, first_reply_at, closed_at,
                                        advisor_id, first_reply_by_id, waiting_s, first_response_s, resolution_s)
           SELECT id, site_id, escalated_at, assigned_at, first_reply_at, closed_at, assigned_id,
                  CASE WHEN first_reply_at IS NOT NULL THEN coalesce(assigned_id, (%(advisors)s)[1]) END,
                  extract(epoch FROM assigned_at - escalated_at), extract(epoch FROM first_reply_at - escalated_at),
                  extract(epoch FROM closed_at - escalated_at)
           FROM conversations_conversation WHERE site_id = %(site)s AND escalated_at IS NOT NULL ORDER BY id""",
        {"site": site_id, "advisors": advisor_ids})
    cursor.execute(
        """INSERT INTO reports_rating (conversation_id, episode_id, site_id, advisor_id, score, comment, created_at)
           SELECT conversation_id, id, site_id, advisor_id, 1 + (conversation_id * 7) %% 5, '',
                  closed_at + interval '1 minute'
           FROM reports_episode WHERE site_id = %(site)s AND closed_at IS NOT NULL AND conversation_id %% 3 = 0""",
        {"site": site_id})
    cursor.execute(
        """UPDATE conversations_conversation c SET rating = jsonb_build_object('score', r.score, 'comment', '')
           FROM reports_rating r WHERE r.conversation_id = c.id AND c.site_id = %(site)s""", {"site": site_id})
    # The lister has read half of them, some only partly.
    cursor.execute(
        """INSERT INTO conversations_readstate (seq, advisor_id, conversation_id)
           SELECT CASE WHEN c.id %% 4 = 0 THEN c.last_seq - 2 ELSE c.last_seq END, %(lister)s, c.id
           FROM conversations_conversation c WHERE c.site_id = %(site)s AND c.id %% 2 = 0""",
        {"site": site_id, "lister": lister_id})
    cursor.execute("SELECT count(*) FROM conversations_conversation WHERE site_id = %s", (site_id,))
    (n_conversations,) = cursor.fetchone()
    cursor.execute("SELECT count(*) FROM conversations_message")
    (n_messages,) = cursor.fetchone()
    return {"conversations": n_conversations, "messages_total": n_messages,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--sites", type=int, default=1)
    parser.add_argument("--advisors", type=int, default=20)
    parser.add_argument("--visitors", type=int, default=6000)
    parser.add_argument("--archive", type=int, default=100_000)
    parser.add_argument("--per-conversation", type=int, default=10)
    parser.add_argument("--mixed-advisors", type=int, default=20, help="the mixed profile's team (bench/mixed.py)")
    parser.add_argument("--bot-watchers", type=int, default=2,
                        help="of the mixed team, how many see the conversations the bot leads")
    args = parser.parse_args(argv)
    _setup_django()
    from django.db import connection, transaction

    from advisors.demo import seed_demo

    t0 = time.monotonic()
    seed_demo()
    manifest = seed_people(sites=args.sites, advisors=args.advisors, mixed_advisors=args.mixed_advisors,
                           bot_watchers=args.bot_watchers)
    with transaction.atomic(), connection.cursor() as cursor:
        manifest["visitors"] = seed_visitors(cursor.cursor, count=args.visitors, sites=manifest["sites"],
                                             advisors=manifest["advisors"])
    if args.archive:
        with transaction.atomic(), connection.cursor() as cursor:
            manifest["archive"].update(seed_archive(
                cursor.cursor, site_id=manifest["archive"]["id"],
                advisor_ids=[p["advisor_id"] for p in manifest["advisors"]], lister_id=manifest["lister"]["advisor_id"],
                conversations=args.archive, per_conversation=args.per_conversation))
            # The archive was written with triggers off: fill the inbox tallies and read-state copies the
            # triggers keep, as the migration that added them does.
            import_module("conversations.migrations.0002_inbox_counts").rebuild(connection)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    manifest["seed_seconds"] = round(time.monotonic() - t0, 1)
    with open(args.out, "w") as handle:
        json.dump(manifest, handle)
    shown = {k: v for k, v in manifest.items() if k not in ("visitors", "advisors", "mixed")}
    print(json.dumps(shown), file=sys.stderr)


if __name__ == "__main__":
    main()
