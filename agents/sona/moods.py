"""Moods and the canonical genres they call for (docs/RULES.md, "Personalization", moods).

Shared by the discovery intent parser (a query that says "something cheerful") and the
recommendation context (a mood sent with the request). The original table names a few
genres outside our 18 canonical ones; each is mapped to its nearest canonical genre:
nature and lifestyle -> documentary, sci-fi -> science_fiction, classic -> drama (a
"classic" is an age, not a genre: the caller may also prefer older release years).
"""

from __future__ import annotations

# Words that name each mood family, as a user would type them.
MOOD_WORDS: dict[str, tuple[str, ...]] = {
    "happy": ("happy", "joyful", "cheerful", "funny", "fun", "uplifting", "feel-good", "feel good"),
    "sad": ("sad", "melancholy", "melancholic", "somber", "sombre", "tearjerker"),
    "excited": ("excited", "energetic", "pumped", "thrilling", "adrenaline", "exciting"),
    "relaxed": ("relaxed", "calm", "peaceful", "chill", "relaxing", "cozy", "cosy"),
    "scared": ("scared", "fearful", "scary", "spooky", "creepy", "terrifying"),
    "romantic": ("romantic", "loving", "love"),
    "curious": ("curious", "intrigued", "intriguing", "mind-bending", "thought-provoking"),
    "nostalgic": ("nostalgic", "reminiscent", "classic", "retro"),
}

MOOD_GENRES: dict[str, tuple[str, ...]] = {
    "happy": ("comedy", "family", "animation"),
    "sad": ("drama", "romance"),
    "excited": ("action", "adventure", "thriller"),
    "relaxed": ("documentary",),
    "scared": ("horror", "thriller"),
    "romantic": ("romance", "drama"),
    "curious": ("documentary", "mystery", "science_fiction"),
    "nostalgic": ("drama",),
}
# docs/RULES.md: "any other mood: drama, comedy".
DEFAULT_MOOD_GENRES: tuple[str, ...] = ("drama", "comedy")

_WORD_TO_MOOD = {word: mood for mood, words in MOOD_WORDS.items() for word in words}


def mood_of(word: str) -> str | None:
    """The mood family a word names ("cheerful" -> "happy"), or None."""
    word = word.strip().lower()
    if word in MOOD_GENRES:
        return word
    return _WORD_TO_MOOD.get(word)


def genres_for_mood(mood: str) -> tuple[str, ...]:
    """Canonical genres for a mood or any word of its family; unknown moods get the default."""
    family = mood_of(mood)
    return MOOD_GENRES[family] if family else DEFAULT_MOOD_GENRES
