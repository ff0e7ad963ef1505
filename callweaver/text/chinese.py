"""Cantonese or Mandarin, from written text (pure, no model).

The two are written with the same characters, so a general language detector calls both
"Chinese". Colloquial written Cantonese, as Hong Kong callers type and as a Cantonese ASR
writes, gives itself away by characters and words Mandarin does not use (嘅 咗 喺 哋 冇 係
唔 嚟 啲 佢 嘢 睇 畀 㗎 喎 囉 嗰 邊度 點解 而家 ...), and Mandarin by its own (的 了 在 们
没有 是 不 这 那 什么 哪里 怎么 现在 吗 ...). :func:`cantonese_or_mandarin` counts both,
each in Traditional and Simplified, and says which the text is, and how sure (the share of the
markers on the winning side); with no marker at all it cannot tell (a name, a number, 你好).

Formal written Chinese read aloud in Cantonese has no Cantonese markers: a Hong Kong caller's
context (the number dialled, the previous turns) decides those; see
:mod:`callweaver.services.language`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final, Literal

from callweaver.errors import ModelUnavailable

__all__ = ["Chinese", "cantonese_or_mandarin", "has_han", "to_script"]

Chinese = Literal["yue", "zh", ""]

# words first (longest first), so that 邊度 counts once, not as 邊 + 度
_CANTONESE: Final = (
    "唔該|唔緊要|冇問題|點解|點樣|邊度|邊個|邊間|幾時|幾多|而家|依家|呢度|嗰度|呢個|嗰個|"
    "咁樣|噉樣|乜嘢|咩嘢|睇下|等陣|一陣|琴日|聽日|尋日|今日|禮拜|佢哋|我哋|你哋|"
    "唔该|唔紧要|冇问题|点解|点样|边度|边个|边间|几时|几多|依家|呢度|嗰度|呢个|嗰个|"
    "咁样|噉样|乜嘢|咩嘢|睇下|等阵|一阵|听日|寻日|礼拜|佢哋|"
    "嘅|咗|喺|哋|冇|係|唔|嚟|啲|佢|嘢|睇|畀|俾|㗎|喎|囉|嗰|咩|噃|啫|嘞|咪|噉|揾|搵|攰|瞓|"
    "咁|乜|嗮|呀嘛|喇|啱|曬|系咪|系唔系|嚿|埋單|埋单|嘥|嘈|靚|劏|餸|冚"
)
_MANDARIN: Final = (
    "没有|沒有|什么|什麼|怎么|怎麼|哪里|哪裡|哪儿|哪兒|现在|現在|这个|這個|那个|那個|"
    "这里|這裡|那里|那裡|他们|他們|我们|我們|你们|你們|东西|東西|明天|昨天|今天|"
    "喜欢|喜歡|看看|一下|时候|時候|的|了|在|们|們|是|不|这|這|吗|嗎|给|給|看|找|"
    "吧|很|和|吃|说|說|儿|兒"
)
_PATTERN: Final = re.compile(f"(?P<yue>{_CANTONESE})|(?P<zh>{_MANDARIN})")
_HAN: Final = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def has_han(text: str) -> bool:
    """Does ``text`` hold Chinese characters?"""
    return bool(_HAN.search(text))


def cantonese_or_mandarin(text: str) -> tuple[Chinese, float]:
    """``("yue", share)``, ``("zh", share)`` or ``("", 0.0)`` when no marker decides.

    ``share`` is the winning side's share of all markers found (0.5 < share <= 1). Markers
    shared by both (今日 is Cantonese speech but also written Mandarin) are weighed once; the
    function is a vote, cheap enough for every turn (a few microseconds)."""
    yue = zh = 0
    for m in _PATTERN.finditer(text):
        if m.lastgroup == "yue":
            yue += 1
        else:
            zh += 1
    if yue == zh:
        return "", 0.0
    total = yue + zh
    return ("yue", yue / total) if yue > zh else ("zh", zh / total)


# OpenCC's conversions into each script a locale writes replies in
_SCRIPTS: Final = {"hk": "s2hk", "tw": "s2twp", "s": "t2s"}


@functools.cache
def _opencc(config: str) -> Any:
    try:
        import opencc
    except ImportError:
        raise ModelUnavailable(
            "writing Chinese in a locale's script needs OpenCC: "
            "pip install 'callweaver[multilingual]'"
        ) from None
    return opencc.OpenCC(config)


def to_script(text: str, script: str) -> str:
    """``text`` written in ``script``: ``hk`` (Hong Kong Traditional: 裏, 着, 綫), ``tw``
    (Taiwan Traditional, with its words: 軟體), ``s`` (Simplified); text with no Chinese in
    it, or another script name, comes back as it is. Cantonese characters with no other form
    (嘅 咗 喺 㗎) stay."""
    config = _SCRIPTS.get(script)
    if config is None or not has_han(text):
        return text
    out = str(_opencc(config).convert(text))
    if script == "hk" and len(out) == len(text):  # OpenCC writes the particle 晒 as 曬
        out = "".join(o if t not in _KEEP_HK else t for t, o in zip(text, out, strict=True))
    return out


# Cantonese words OpenCC's Simplified -> HK conversion would change: 唔該晒, 食晒
_KEEP_HK: Final = frozenset("晒")
