"""Photos the platform shows are the platform's own: a reference to a picture uploaded to the
gateway (``POST /api/media`` → ``/media/<id>``), never a URL on another host, which an
operator's browser would fetch (telling that host who looks at the case, and when)."""
from __future__ import annotations

from marshmallow import fields, validate

# /media/<id>: the ``path`` the upload answered; the pages load it from their own origin
MEDIA_REF = r"^/media/[0-9a-f]{32}$"
MEDIA_REF_ERROR = ("照片须先上传到平台 (POST /api/media)，填其返回的 path，如 /media/<id> "
                   "(a platform photo: upload it first and give its path)")


def media_ref(**kwargs) -> fields.String:
    """A field holding one platform photo reference (see MEDIA_REF)."""
    return fields.String(validate=validate.Regexp(MEDIA_REF, error=MEDIA_REF_ERROR), **kwargs)
