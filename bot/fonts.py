"""Chinese fonts from the system, found once for everything that draws text: the poster (fpdf2)
and the charts (matplotlib). Debian ships them as packages (fonts-noto-cjk, fonts-wqy-zenhei)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Debian's CJK fonts, in order of preference: (regular file, bold file or None, face index in the file).
KNOWN_FONTS = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
     "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", None, 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", None, 0),
)
NO_FONT = ("no Chinese font found: install one, e.g. `apt-get install fonts-noto-cjk` (or fonts-wqy-zenhei)")

class FontMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Font:
    regular: str
    bold: str
    regular_index: int
    bold_index: int


def find_cjk_font() -> Font:
    """A Simplified Chinese font: fontconfig's choice, else a known Debian path; FontMissing if none."""
    found = _fc_match("sans-serif:lang=zh-cn"), _fc_match("sans-serif:lang=zh-cn:weight=bold")
    if found[0] is not None:
        bold = found[1] or found[0]
        return Font(found[0][0], bold[0], found[0][1], bold[1])
    for regular, bold, index in KNOWN_FONTS:
        if Path(regular).is_file():
            bold_ok = bold is not None and Path(bold).is_file()
            return Font(regular, bold if bold_ok else regular, index, index)  # type: ignore[arg-type]
    raise FontMissing(NO_FONT)


def _fc_match(pattern: str) -> tuple[str, int] | None:
    """(file, face index) of fontconfig's best match, only if that font really covers Chinese."""
    if shutil.which("fc-match") is None:
        return None
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}\t%{index}\t%{lang}", pattern], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    parts = out.split("\t")
    if len(parts) < 3 or "zh-cn" not in parts[2].split("|") or not Path(parts[0]).is_file():
        return None
    if not parts[0].lower().endswith((".ttf", ".otf", ".ttc", ".otc")):
        return None
    return parts[0], int(parts[1] or 0)
