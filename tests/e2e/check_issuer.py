"""Checks that the authorization server answering at ISSUER is the one this run started.

    python check_issuer.py ISSUER RUN_ID

`auth_server.py` answers `/_whoami` with the run id it was given; a server left over from
another run on the same port answers with another one (or not at all). Exit 0 when it matches.
"""

import json
import sys
import urllib.request


def main() -> int:
    issuer, run_id = sys.argv[1], sys.argv[2]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(issuer + "/_whoami", timeout=5) as response:
            answer = json.load(response)
    except (OSError, ValueError) as e:
        print(f"no test authorization server answers at {issuer}: {e}", file=sys.stderr)
        return 1
    if answer != {"run_id": run_id, "issuer": issuer}:
        print(
            f"the server answering as {issuer} is not the one started here: {answer}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
