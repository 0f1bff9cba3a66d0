"""drsandbox: a two-region AWS rehearsal environment for drctl.

moto (in-process, ``moto.server.ThreadedMotoServer``) speaks the AWS APIs; the modules
of this package make the parts a failover depends on honest: timed state transitions,
real health checks against local ALB stand-ins, Route 53 answers by health, CloudFront
ETags and origin groups, AWS Backup jobs over moto's EC2 backend, and per-region faults.
See sandbox/README.md.
"""

__version__ = "0.1.0"

# The one account every seeded resource lives in (moto's default account).
DEFAULT_ACCOUNT = "123456789012"


def backends(backend_dict) -> list:
    """(account, region, backend) triples of a moto BackendDict, copied, so other threads may
    add backends (or reset them) while we look without breaking the iteration."""
    for _ in range(5):
        try:
            return list(backend_dict.iter_backends())
        except RuntimeError:  # "dictionary changed size during iteration": look again
            continue
    return []
