"""DNS answers as AWS gives them: an alias A record to an ALB answers the ALB's addresses.

"The TestDnsAnswer returns information similar to what you would expect from the answer
section of the dig command" (Route 53 API Reference, TestDNSAnswer), and the answer section of
a query for an alias A record to a load balancer holds the load balancer's A records: Route 53
answers an alias record with the records of its target, and an alias to an AWS resource has no
TTL of its own, the resource's is used (Route 53 Developer Guide, "Choosing between alias and
non-alias records"; 60 s for an ELB load balancer: ELB User Guide for ALBs, "Delete an
Application Load Balancer", DNS records). So for an alias A record to an ALB the answer is the
ALB's IPv4 addresses (listeners.py gives every ALB a set), not its DNS name. A CNAME record
still answers its name (that is its data).

Which one TestDNSAnswer and the public edge give is the ``dns_answers`` setting (profile key,
``serve --dns-answers``): ``names`` (the target's DNS name: what drctl matches on today, the
default until drctl resolves names itself) or ``addresses`` (as AWS). The sandbox's own
resolver - ``GET /_sandbox/dns?name=N&type=A`` and the optional UDP DNS server on loopback
(``serve --dns-port``) - always answers as a DNS server does: addresses for ALB names and for
alias A records, CNAMEs followed.
"""

from __future__ import annotations

import logging
import threading

from . import route53

log = logging.getLogger("drsandbox.dns")

ALIAS_TTL = 60  # an alias record to an ELB load balancer answers with the load balancer's TTL
MAX_CNAME_HOPS = 8


def mode(sb) -> str:
    return sb.profile.setting("dns_answers")


def alias_target_listener(sb, rrset):
    """The ALB listener an alias record points to, or None."""
    alias = getattr(rrset, "alias_target", None) or {}
    return sb.listeners.by_dns(str(alias.get("DNSName", ""))) if alias else None


def record_answer(sb, account: str, zone, name: str, rtype: str, answers: str | None = None):
    """(record data, rcode, chosen record set, ALB listener it leads to or None) of one
    TestDNSAnswer-style query, in ``answers`` mode (default: the sandbox's ``dns_answers``)."""
    data, rcode, chosen = route53.answer(account, zone, name, rtype)
    listener = alias_target_listener(sb, chosen) if chosen is not None else None
    if chosen is None or not chosen.alias_target:
        return data, rcode, chosen, None
    if (answers or mode(sb)) == "addresses":
        if listener is not None:
            # An ALB here is IPv4 only: A answers its addresses, AAAA nothing (NOERROR).
            data = list(listener.addresses) if rtype == "A" else []
        else:
            target = str(chosen.alias_target.get("DNSName", "")).rstrip(".")
            resolved = resolve(sb, target, rtype, account)
            if resolved["rcode"] == "NOERROR" and resolved["addresses"]:
                data = resolved["addresses"]  # an alias to another record the sandbox knows
    return data, rcode, chosen, listener


# --------------------------------------------------------------------------- the resolver

def _zone_for(account: str, qname: str):
    """The most specific public hosted zone of ``account`` that ``qname`` falls in."""
    from moto.route53.models import route53_backends

    best = None
    for zone in list(route53_backends[account]["aws"].zones.values()):
        if zone.private_zone:
            continue
        zname = zone.name.lower().rstrip(".")
        if qname == zname or qname.endswith("." + zname):
            if best is None or len(zname) > len(best.name.rstrip(".")):
                best = zone
    return best


def resolve(sb, name: str, rtype: str = "A", account: str | None = None) -> dict:
    """What a DNS resolver gets for ``name``/``rtype`` from the sandbox's DNS: the ALBs' own
    names (their addresses) and the records of the account's public hosted zones (by health,
    as TestDNSAnswer), alias A records answering their ALB's addresses, CNAMEs followed.

    ``{"name", "type", "rcode", "records": [{"name", "type", "ttl", "data"}], "addresses",
    "alb"}``: ``addresses`` are the A data at the end of the chain, ``alb`` the DNS name of the
    ALB they belong to (None if none)."""
    account = account or sb.edges["account"]
    rtype = (rtype or "A").upper()
    qname = name.lower().rstrip(".")
    out = {"name": qname, "type": rtype, "rcode": "NXDOMAIN", "records": [], "addresses": [], "alb": None}
    current = qname
    for _ in range(MAX_CNAME_HOPS):
        listener = sb.listeners.by_dns(current)
        if listener is not None:
            out["rcode"], out["alb"] = "NOERROR", listener.dns_name
            if rtype == "A":
                out["records"] += [{"name": current, "type": "A", "ttl": ALIAS_TTL, "data": a}
                                   for a in listener.addresses]
                out["addresses"] = list(listener.addresses)
            return out
        zone = _zone_for(account, current)
        if zone is None:
            return out if not out["records"] else {**out, "rcode": "NOERROR"}
        data, rcode, chosen = route53.answer(account, zone, current, rtype)
        out["rcode"] = rcode
        if chosen is None:
            return out
        if chosen.alias_target:
            target = alias_target_listener(sb, chosen)
            if target is not None:
                out["alb"] = target.dns_name
                if rtype == "A":
                    out["records"] += [{"name": current, "type": "A", "ttl": ALIAS_TTL, "data": a}
                                       for a in target.addresses]
                    out["addresses"] = list(target.addresses)
                return out
            current = str(chosen.alias_target.get("DNSName", "")).lower().rstrip(".")
            continue  # an alias to another name: answered with that name's records
        ttl = int(chosen.ttl) if chosen.ttl is not None else ALIAS_TTL
        if chosen.type == "CNAME" and rtype != "CNAME":
            target = str(data[0]).lower().rstrip(".") if data else ""
            out["records"].append({"name": current, "type": "CNAME", "ttl": ttl, "data": target})
            current = target
            continue
        out["records"] += [{"name": current, "type": chosen.type, "ttl": ttl, "data": str(d)} for d in data]
        if chosen.type == "A":
            out["addresses"] = [str(d) for d in data]
            listener = next((sb.listeners.by_address(str(d)) for d in data if sb.listeners.by_address(str(d))), None)
            out["alb"] = listener.dns_name if listener else None
        return out
    return {**out, "rcode": "SERVFAIL"}  # a CNAME loop


def alb_of(sb, name: str, account: str | None = None):
    """The ALB listener ``name`` leads to now through the sandbox's DNS (the one holding the
    first address answered), or None: where a client resolving ``name`` would connect."""
    if not name:
        return None
    found = resolve(sb, name, "A", account)
    if found["rcode"] != "NOERROR" or not found["addresses"]:
        return None
    return sb.listeners.by_address(found["addresses"][0])


# --------------------------------------------------------------------------- UDP server

class UdpDnsServer:
    """A tiny authoritative DNS server on loopback (dnslib): point a resolver or ``dig`` at
    127.0.0.1 -p PORT. Answers A (and CNAME chains) from ``resolve``; every other type is an
    empty NOERROR for a known name; unknown names NXDOMAIN. Nothing it answers leaves the
    machine: the addresses are RFC 5737 documentation addresses, which the public edge maps
    back to local listeners."""

    def __init__(self, sb, port: int = 0, host: str = "127.0.0.1") -> None:
        self.sb, self.host, self.port = sb, host, port
        self._server = None
        self._lock = threading.Lock()

    def start(self) -> int:
        from dnslib import QTYPE, RCODE, RR, A, CNAME
        from dnslib.server import BaseResolver, DNSLogger, DNSServer

        sb = self.sb

        class _Resolver(BaseResolver):
            def resolve(self, request, handler):
                reply = request.reply()
                q = request.q
                qtype = QTYPE[q.qtype]
                try:
                    found = resolve(sb, str(q.qname), qtype if qtype in ("A", "CNAME", "AAAA") else "A")
                except Exception:  # never let a lookup bug kill the server
                    log.exception("DNS lookup of %s failed", q.qname)
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                if found["rcode"] != "NOERROR":
                    reply.header.rcode = getattr(RCODE, found["rcode"], RCODE.SERVFAIL)
                    return reply
                for rec in found["records"]:
                    if rec["type"] == "A" and qtype in ("A", "ANY"):
                        reply.add_answer(RR(rec["name"] + ".", QTYPE.A, ttl=rec["ttl"], rdata=A(rec["data"])))
                    elif rec["type"] == "CNAME":
                        reply.add_answer(RR(rec["name"] + ".", QTYPE.CNAME, ttl=rec["ttl"],
                                            rdata=CNAME(rec["data"] + ".")))
                reply.header.aa = 1
                return reply

        self._server = DNSServer(_Resolver(), port=self.port, address=self.host,
                                 logger=DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data",
                                                  prefix=False))
        self._server.start_thread()
        self.port = self._server.server.server_address[1]
        return self.port

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.stop()
            except Exception:  # already gone
                pass
            self._server = None
