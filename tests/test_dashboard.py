"""The pages (/dashboard, /publish): static files that hold no data, with strict browser
security headers; their data routes need the token. (tests/test_browser.py runs them in
Chromium.)"""

from __future__ import annotations

import re

import aiohttp
import pytest

from engines.backends import TorchBackend
from stream.server.pages import FILES
from tests.live_support import narrow_model, run
from tests.server_support import TOKEN, served


@pytest.fixture(scope="module")
def backend() -> TorchBackend:
    return TorchBackend(narrow_model())


def test_the_pages_and_their_files_are_served_without_data_and_with_a_strict_policy(backend):
    async def main() -> dict[str, tuple[int, dict, str]]:
        async with served(backend) as (server, _), aiohttp.ClientSession() as http:
            found = {}
            for path in (*FILES, "/events", "/state", "/alerts/x/crops.png"):
                async with http.get(server.url + path, timeout=5) as reply:
                    body = await reply.text() if path in FILES else ""
                    found[path] = (reply.status, dict(reply.headers), body)
            return found

    found = run(main())
    assert {found[path][0] for path in ("/events", "/state", "/alerts/x/crops.png")} == {401}
    for path in FILES:
        status, headers, body = found[path]
        kind = {"js": "text/javascript", "ss": "text/css"}.get(path[-2:], "text/html")
        assert status == 200 and headers["Content-Type"].startswith(kind), path
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in policy
        assert "unsafe" not in policy  # no inline script, no eval
        assert "frame-ancestors 'none'" in policy and headers["X-Content-Type-Options"] == "nosniff"
        assert TOKEN not in body
    scripts = {path: found[path][2] for path in FILES if path.endswith(".js")}
    for page, own in (("/dashboard", "/dashboard.js"), ("/publish", "/publish.js")):
        html = found[page][2]
        tags = re.findall(r"<script[^>]*>", html)
        assert tags == ['<script src="live.js" defer>', f'<script src="{own[1:]}" defer>']
        assert 'type="password"' in html  # the token is asked for, never in the page
        wanted = set(re.findall(r'getElementById\("([^"]+)"\)', scripts[own]))
        assert wanted and wanted <= set(re.findall(r'id="([^"]+)"', html)), page
