"""Makes moto's ListObjectVersions treat a KeyMarker without a
VersionIdMarker as S3 does: the listing starts at the first key after the
marker. moto 5.2.5 (and its main branch as of 2026-11) instead drops the
first version at or after the marker and keeps the marker's own versions,
so a scan that starts a key range at KeyMarker = after would lose one
version of the range's first key. Run by scripts/test_moto.sh after the
install; it changes nothing on a second run and stops if moto's code is
not the one it knows.
"""

import pathlib
import sys

import moto.s3.models

BUGGY = """                    skip_versions = version.name < key_marker
                    continue
"""
AS_S3 = """                    skip_versions = version.name <= key_marker
                    if skip_versions:
                        continue
"""

path = pathlib.Path(moto.s3.models.__file__)
code = path.read_text()
if AS_S3 in code:
    sys.exit(0)
if code.count(BUGGY) != 1:
    sys.exit(f"{path}: the KeyMarker code this script mends is not there; check moto's version")
path.write_text(code.replace(BUGGY, AS_S3))
print(f"mended moto's KeyMarker handling in {path}")
