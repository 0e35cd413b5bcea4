# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to the Monoz Link API.
    DOCUMENTATION = r"""
options:
  org_id:
    description:
      - The organisation's unique ID in Monoz Link, as it appears in the API path.
      - It is URL-quoted into the request path.
      - If not set, the value of the E(MONOZ_ORG_ID) environment variable is used.
    type: str
    required: true
  api_key:
    description:
      - The Monoz Link API key, sent in the C(X-API-Key) header.
      - If not set, the value of the E(MONOZ_API_KEY) environment variable is used.
      - The key is never logged, and never appears in results, error messages or the journal.
    type: str
    required: true
  api_url:
    description:
      - Base URL of the Monoz Link API; requests go to C({api_url}/{org_id}/...), for example
        C({api_url}/{org_id}/Publish/Message).
      - If not set, the value of the E(MONOZ_API_URL) environment variable is used, and without it the vendor's URL.
      - Point it at the local emulator (C(http://127.0.0.1:8580/api/v1)) for tests.
      - Redirects are never followed, so the API key is only ever sent to this URL.
    type: str
    default: https://link.monoz.io/api/v1
  timeout:
    description:
      - Seconds to wait for the API to connect and to answer, per HTTP request.
      - A request that times out after it was sent is not retried, because it may have taken effect (a message
        published, a SIM reset).
    type: float
    default: 30
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate.
      - Set to V(false) only for test servers with self-signed certificates.
      - A custom CA bundle can be given with the E(REQUESTS_CA_BUNDLE) environment variable.
    type: bool
    default: true
  retries:
    description:
      - Extra attempts per request on transient faults only.
      - Retried are connection failures before any response, HTTP 429 (honouring C(Retry-After), at most 120 seconds),
        502, 503 and 504, with exponential back-off and jitter.
      - HTTP 500, other errors and read timeouts are never retried, since a retry could deliver a message (or reset a
        SIM) twice.
      - Between 0 and 20.
    type: int
    default: 3
notes:
  - Proxies are taken from the E(HTTPS_PROXY), E(HTTP_PROXY) and E(NO_PROXY) environment variables.
requirements:
  - requests (Python library on the host that runs the module)
"""
