"""The one place that hides credentials in source URLs.

Everything that shows a source to a person or a file (status details, log lines, exception
messages, JSON events, the UI) passes its text through :func:`mask_credentials` first.

Two kinds of secrets are hidden, in any URL found anywhere in the text:

- the userinfo (``user:password@``) however the password is written: a URL's userinfo runs
  from ``scheme://`` to the last ``@`` (on that line, before the next ``scheme://``) that is
  followed by a host, so an unescaped ``@``, ``/``, ``#``, ``?``, ``:`` or space in the password
  is hidden with it. One reading is kept: ``scheme://host[:port]/path/with@name`` (an ``@``
  inside a path that ends there) is a path, not userinfo.
- the value of every query, fragment or ``;`` parameter whose name looks secret: its name,
  percent-decoded, lower-cased and stripped of ``-``, ``_`` and ``.``, contains one of
  :data:`SECRET_WORDS` or starts or ends with one of :data:`SECRET_AFFIXES` (``api_key``,
  ``X-Amz-Signature``, ``access_token``, ``sessionid``, ...).

Masking is idempotent.

>>> mask_credentials("rtsp://admin:s3cret@10.0.0.2:554/stream1")
'rtsp://***@10.0.0.2:554/stream1'
>>> mask_credentials("cannot open http://cam.local/video?user=admin&password=s3cret&fps=25")
'cannot open http://cam.local/video?user=***&password=***&fps=25'
>>> mask_credentials("rtsp://admin:pa/ss word@cam/live#access_token=abc")
'rtsp://***@cam/live#access_token=***'
"""
from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# parameter names (normalised) holding any of these are secret ...
SECRET_WORDS = ("pass", "pwd", "secret", "token", "auth", "credential", "session", "signature", "cookie", "apikey",
                "jwt", "bearer", "private")
# ... and so are names starting or ending with one of these (key, apikey, keyid, sig, username, ...)
SECRET_AFFIXES = ("key", "sig", "user", "login", "sid", "pw")

_SCHEME = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://")
# an '@' that ends a userinfo: a host (name, IPv4, [IPv6]; may be missing), an optional port, then where a host can end
_AT_HOST = re.compile(r"@(?:\[[0-9A-Fa-f:.]*\]|[\w.\-~%]+)?(?P<port>:\d*)?(?=(?P<after>[/?#\s\"'<>),;]|$))")
_PLAIN_AUTHORITY = re.compile(r"[\w.\-~%]+(?::\d+)?/")  # host[:port]/ with no userinfo
_PARAM = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&;#?\s/]+)=(?P<value>[^&;#?\s\"'<>]*)")


def is_secret_name(name: str) -> bool:
    """Whether a query/fragment parameter called ``name`` carries a credential.

    >>> [is_secret_name(n) for n in ("api_key", "X-Amz-Signature", "apiKey", "api%5Fkey", "fps", "res")]
    [True, True, True, True, False, False]
    """
    norm = re.sub(r"[^a-z0-9]", "", unquote(name).lower())
    return any(w in norm for w in SECRET_WORDS) or any(norm.startswith(a) or norm.endswith(a) for a in SECRET_AFFIXES)


def _mask_userinfo(extent: str) -> str:
    """``extent`` (what follows one ``scheme://``) with its userinfo, if any, replaced by ``***``."""
    ats = list(_AT_HOST.finditer(extent))
    if not ats or ats[-1].start() == 0:
        return extent
    at = ats[-1]
    before = extent[:at.start()]
    path_at = (_PLAIN_AUTHORITY.match(before) and not any(c.isspace() for c in before)
               and at.group("port") is None and at.group("after") not in ("/", "?", "#"))
    return extent if path_at else MASK + extent[at.start():]


def mask_credentials(text: str) -> str:
    """``text`` with every URL's userinfo and every secret-looking parameter value replaced by ``***``."""
    schemes = list(_SCHEME.finditer(text))
    if schemes:
        pieces = [text[:schemes[0].end()]]
        for m, following in zip(schemes, schemes[1:] + [None]):
            bound = following.start() if following is not None else len(text)
            end = text.find("\n", m.end(), bound)
            end = bound if end < 0 else end
            pieces += [_mask_userinfo(text[m.end():end]), text[end:following.end() if following else bound]]
        text = "".join(pieces)
    return _PARAM.sub(lambda m: m.group(0) if not m.group("value") or not is_secret_name(m.group("name"))
                      else f"{m.group('lead')}{m.group('name')}={MASK}", text)
