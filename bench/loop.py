"""Process setup shared by the benchmark's own processes: uvloop when installed, many open files."""

import asyncio
import resource


def install() -> str:
    """Raise the open-files limit to its maximum and use uvloop if it is there; the loop's name."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
