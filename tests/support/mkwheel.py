"""Writes a minimal pure-Python wheel, as a build backend would:
mkwheel.py OUTDIR NAME VERSION [REQUIREMENT...]. One module NAME with
VALUE = "NAME VERSION", METADATA with Requires-Dist lines, WHEEL, and a
RECORD of sha256 hashes (PEP 376/427)."""
import base64
import hashlib
import sys
import zipfile

out, name, version, *requires = sys.argv[1:]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f'VALUE = "{name} {version}"\n',
    f"{dist}/METADATA": "Metadata-Version: 2.1\n"
    f"Name: {name}\nVersion: {version}\n"
    + "".join(f"Requires-Dist: {r}\n" for r in requires),
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: mkwheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for path, text in files.items():
    data = text.encode()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record.append(f"{dist}/RECORD,,")
files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(f"{out}/{name}-{version}-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        z.writestr(path, text)
