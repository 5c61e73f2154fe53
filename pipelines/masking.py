"""The one place that hides credentials in source URLs.

Everything that shows a source to a person or a file (status details, log lines, exception
messages, JSON events, the UI) passes its text through :func:`mask_credentials` first.

>>> mask_credentials("rtsp://admin:s3cret@10.0.0.2:554/stream1")
'rtsp://***@10.0.0.2:554/stream1'
>>> mask_credentials("cannot open http://cam.local/video?user=admin&password=s3cret&fps=25")
'cannot open http://cam.local/video?user=***&password=***&fps=25'
"""
from __future__ import annotations

import re

MASK = "***"

# scheme://userinfo@ : userinfo runs up to the last '@' before the host's path, query or
# fragment, so an unescaped '@' inside a password is hidden too.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/?#]*@")
# query parameters that carry credentials (cameras that take them in the query string)
_SECRET_PARAMS = re.compile(
    r"(?P<key>[?&;](?:user(?:name)?|login|pass(?:word|wd)?|pwd|token|key|auth|secret|signature)=)[^&;#\s]*",
    re.IGNORECASE,
)


def mask_credentials(text: str) -> str:
    """``text`` with the user:password part of every URL and credential-like query values replaced by ``***``."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    return _SECRET_PARAMS.sub(lambda m: m.group("key") + MASK, text)
