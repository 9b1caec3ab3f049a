"""schemathesis hooks: sign every request with SDK-HMAC-SHA256 (see sign.py).

Loaded through SCHEMATHESIS_HOOKS by run.sh, which sets VPCEP_FUZZ_AK and VPCEP_FUZZ_SK to
the fuzz account's credentials.
"""

import os
import sys

import schemathesis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sign import SdkHmacAuth  # noqa: E402

schemathesis.auth.set_from_requests(
    SdkHmacAuth(os.environ["VPCEP_FUZZ_AK"], os.environ["VPCEP_FUZZ_SK"])
)
