"""``manage.py audit verify [--org SLUG]`` (also ``nexow audit verify``): recompute the audit hash
chains and print the first broken link. Exit status 0 when every chain checked is intact, 1 on a
break."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import verify_all_chains, verify_chain
from accounts.models import Organization


class Command(BaseCommand):
    help = "Audit log tools. `verify [--org SLUG]` checks the tamper-evident hash chain."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="verify the hash chain (all chains by default)")
        verify.add_argument("--org", metavar="SLUG", help="only this organisation's chain")

    def handle(self, *args, action: str, org: str | None = None, **options) -> None:
        if action != "verify":  # pragma: no cover - argparse restricts the choices
            raise CommandError(f"unknown action {action!r}")
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"no organisation with slug {org!r}", returncode=2)
            reports = [verify_chain(organization)]
        else:
            reports = verify_all_chains()
        broken = [r for r in reports if not r.intact]
        for report in reports:
            if report.intact:
                self.stdout.write(f"{report.chain}: intact ({report.checked} entries)")
            else:
                self.stdout.write(
                    f"{report.chain}: BROKEN at entry id={report.broken_id} after "
                    f"{report.checked} good entries: {report.reason}\n"
                    f"  expected: {report.expected}\n  found:    {report.found}"
                )
        if not reports:
            self.stdout.write("no audit entries yet")
        if broken:
            raise CommandError(f"{len(broken)} audit chain(s) broken", returncode=1)
