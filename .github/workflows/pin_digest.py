"""Write a pushed image's reference into the config: `python pin_digest.py CONFIG KEY IMAGE DIGEST`.

KEY is the config section holding `image:` and `digest:` (`container`: the main image), or `SECTION.FIELD` naming one
image line that has no digest field of its own (`container.verl_image`: it becomes IMAGE@DIGEST, which Apptainer pulls
by digest). Only those lines change (comments and every other line are kept), so the release workflow can open a
small PR with the result.
Used by .github/workflows/image.yml; tested in tests/test_readme_commands.py.
"""

import re
import sys


def pin(text: str, key: str, image: str, digest: str) -> str:
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise SystemExit(f"not a sha256 digest: {digest!r}")
    key, _, field = key.partition(".")
    m = re.search(rf"^{re.escape(key)}:[ \t]*(#.*)?\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, flags=re.M)
    if not m:
        raise SystemExit(f"no top-level section {key!r} in the config")
    block = m.group(2)
    if field:  # one image line pinned in place: docker://repo/name@sha256:...
        ref = image.rsplit(":", 1)[0] if re.search(r":[^/]+$", image.split("://", 1)[-1]) else image
        new, n = re.subn(rf"^(\s+{re.escape(field)}:\s*)\S+", lambda g: g.group(1) + f"{ref}@{digest}", block,
                         count=1, flags=re.M)
        if not n:
            raise SystemExit(f"section {key!r} has no `{field}:` line")
        return text[:m.start(2)] + new + text[m.end(2):]
    new, n_img = re.subn(r"^(\s+image:\s*)\S+", lambda g: g.group(1) + image, block, count=1, flags=re.M)
    new, n_dig = re.subn(r"^(\s+digest:\s*)\S+", lambda g: g.group(1) + digest, new, count=1, flags=re.M)
    if not (n_img and n_dig):
        raise SystemExit(f"section {key!r} needs both `image:` and `digest:` lines")
    return text[:m.start(2)] + new + text[m.end(2):]


if __name__ == "__main__":
    path, key, image, digest = sys.argv[1:5]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(pin(text, key, image, digest))
    print(f"{path}: {key}.image = {image}, {key}.digest = {digest}")
