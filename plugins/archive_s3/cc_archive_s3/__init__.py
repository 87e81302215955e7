"""S3 job archive for ClusterCockpit (``"archive": {"kind": "s3", "bucket": …, "endpoint": …}``).

Same object keys as upstream's S3 backend, so a bucket written by Go cc-backend is read unchanged.
Importing this module is cheap: obstore and the backend load when the plugin registers.
"""

from cc_core.hookspecs import hookimpl


@hookimpl
def register_archive_backends(register):  # type: ignore[no-untyped-def]
    from cc_archive_s3.backend import S3Archive

    register(S3Archive)
