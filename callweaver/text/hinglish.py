"""Hindi written in Latin letters ("Hinglish": "mera order abhi tak nahi aaya"), told by its
function words. Pure.

Callers who speak Hindi on the phone are often transcribed, or type, in Latin letters, mixed
with English words ("Payment ho gaya hai, aap check kar lijiye"). Letter statistics read that
as English (lingua has no model of romanized Hindi), so a Hindi caller would be answered in
English. Hindi's own small words give it away: its postpositions, pronouns, auxiliaries and
question words ("hai", "nahi", "kya", "mujhe", "aap", "lijiye") are frequent, short and,
in these spellings, not words of English or of the other languages a deployment is likely to
speak. Words that are (German "mein", "wo"; Spanish "se", "pata"; French "par"; Turkish "kal";
English "main", "hum"; Vietnamese and Italian "hai" count only beside another) are left out
or need company.

:func:`is_hinglish` asks for at least two different such words, making up at least a quarter
of the text's words: "Hi, is the clinic open?" has none, "Hai" alone is Italian or Vietnamese
as much as Hindi, "Bhaiya, mera order abhi tak deliver nahi hua" has four.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MARKERS", "hinglish_markers", "is_hinglish"]

_MARKERS: Final = """
    hai hain hoon hun tha thi nahi nahin nahee kya kyun kyon kyunki kaise kaisa kaisi kab kahan
    kaun kitna kitni kitne mujhe mujhko mera meri mere hamara hamari hamare humein hume aap
    aapka aapki aapke aapko tumhara tumhari tumhe unka unki unke uska uski uske yeh woh
    abhi aaj subah shaam bahut thoda thodi accha acha achha achchha theek thik haan haanji ji
    lekin aur bhi sirf matlab samajh chahiye chahie karna karni karne karo kariye kijiye
    karenge lijiye dijiye dijie batao bataiye bataye boliye bolo dekhiye sakte sakta sakti
    raha rahi rahe gaya gayi gaye hua hui hue hoga hogi honge lagega lagegi lagta lagti wala
    wali wale ke ki ko bhaiya bhaisahab didi sahab yaar arre arey chalo chalega jaldi zaroor
    zaruri paisa paise kuch koi kisi apna apni apne baat baar ghanta mein
"""
MARKERS: Final = frozenset(_MARKERS.split())
"""Romanized Hindi function words and common verbs, lower case. "mein" (in) is German "my"
too: see :func:`is_hinglish`, which needs two different markers."""

_WORD: Final = re.compile(r"[a-z]+")


def hinglish_markers(text: str) -> tuple[int, int]:
    """(how many of the text's Latin words are :data:`MARKERS`, how many Latin words)."""
    words = _WORD.findall(text.lower())
    return sum(w in MARKERS for w in words), len(words)


def is_hinglish(text: str) -> bool:
    """Is ``text`` Hindi in Latin letters (see the module docstring)? Text in other scripts
    is not (Devanagari Hindi is told by its letters)."""
    words = _WORD.findall(text.lower())
    found = {w for w in words if w in MARKERS}
    if len(found) < 2:
        return False
    hits = sum(w in MARKERS for w in words)
    return hits * 4 >= len(words)
