"""Hybrid retrieval: BM25 (exact identifiers) + dense MiniLM (meaning), and when to stay silent.

Dense vectors blur env var names, CLI flags and tag names; BM25 finds them
verbatim. Both are scored over every chunk (a few thousand: exact search in
memory takes ~1 ms, so nothing that only one side ranks high is lost to a
cut-off) and fused as `cosine + lexical_weight * bm25 / best bm25`. Measured on
the Label Studio docs this beats reciprocal-rank fusion: a rank throws away
how far ahead the best match is.

A question that names a page by its exact title, as written ("the Video
tag", "TextArea", "Data Manager"), adds `title_weight` to that page's chunks:
the tag pages' parameter tables are rows of identifiers that MiniLM reads
poorly, and the title is what ties them to the question. Titles are matched
case-sensitively and whole (not "style" in "S3-style"); a title found in
more than 5 % of all chunks ("Label Studio") says nothing and is skipped.
A release note titled "Label Studio Enterprise 2.22.0" is named by "2.22.0"
(and "2.30" names 2.30.0), and gets twice the weight.

Every table row is also embedded alone at ingest (`qa.chunking.table_rows`):
a question about one attribute ("can I switch off the rotate handle?")
matches its row ("canRotate | Show or hide rotation control") better than
any chunk. Each item of a release note is embedded alone the same way
(`qa.chunking.item_rows`): one note lists many unrelated changes. The chunks of
the 5 best rows get up to `table_row_weight`, by how far each row stands out.
Rows are never returned themselves.

A question that says which edition it is about ("community edition", "open
source"; "LSE", "Enterprise") takes `edition_weight` off the chunks of pages
written for the other one (their front matter's `tier`): the docs have a
community "Project settings" page and an Enterprise one, nearly alike.

A search can be told places to prefer (`prefer`: a file and section with a
weight): the answer chain passes the sections that approved answers to
similar questions cited (`qa.precedents`).

The question's vector first goes through the query adapter that ingest
fitted to this docs set (`qa.adapter`), when there is one.

Each hit is returned with its neighbouring chunks of the same file (up to
`context_chars`), so a passage cut in two still reaches the answer whole,
and at most `max_per_file` hits come from one file. A chunk whose words are
nearly those of a hit already picked (Jaccard ≥ 0.8: the same "Running with
Docker" paragraph in twenty ML tutorials) is skipped, so five passages are
five different things.

A question asking which tag to use ("which tag do I use for…", "is there a
tag that…") adds `tag_page_weight` to the tag reference pages (`…/tags/…`):
templates that use a tag describe it in everyday words and otherwise win.

The abstain verdict (the docs most likely don't cover the question) has three parts:
- the question names a term the docs never use and that is not an English word
  either (DICOM, FedRAMP, PayPal), is a name (Arabic, Java) or a name with digits
  (HDF5): the docs can't be about it, unless the rest of the question matches them
  strongly (evidence ≥ 1.0: "prompts for SFT", "the Chinese translation of the UI" are
  about the docs);
- the question asks a price (what something costs, a discount) and no passage
  found states an amount: docs rarely do, and the product's pages match well;
- the evidence score, `log1p(best bm25 / ln(chunks)) + 0.5 * best cosine`, is
  below `abstain_threshold`: nothing matches in words or meaning (off-topic).
`python -m qa.evaluate QUESTIONS --calibrate` prints the threshold for your own docs and questions.

A docs set of fewer than `SMALL_DOCS_CHUNKS` (100) chunks has its evidence divided by
`ln(1 + chunks) / ln(1 + 100)` (0.45 for 7 chunks, 0.71 for 25), so both bounds (the threshold
and the unknown-term rule's 1.0) keep their meaning whatever the docs' size. Both parts of the
score are maxima over the chunks, and over a few chunks they are lower, for an uncovered
question most of all; a small set also uses fewer words, so a covered question names more terms
it never prints ("endpoint", "hotkey"). Measured on 48 subsets of the Label Studio docs (6 to
3,961 chunks; eval/README.md, "Small docs sets"): below 100 chunks it wrongly abstained on 30 of
219 covered questions (10 of 26 under 16 chunks) and on 6 with this scale, while its abstentions
on uncovered questions about the same product fell from 86 % to 66 %. Scaled, those uncovered
questions' median evidence is 0.74-0.79 at every size under 100 chunks, and 0.76 from 100 to 400.
Larger sets score as before.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import bm25s
import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, PrivateAttr

from qa.adapter import load_adapter
from qa.chunking import is_row, split_breadcrumb
from qa.store import DocStore, IndexState, store_failures
from qa.types import Preferred, RetrievalResult

if TYPE_CHECKING:
    from settings import Settings

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import: a line per index load

TOKEN_PATTERN = r"(?u)[\w][\w.\-/:]*[\w]|\w"  # keeps LABEL_STUDIO_X, no-browser, dbx:// stems, v1.2
STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from how i if in into is it its me my of on or our "
    "so that the their then there these this to was we what when where which who why will with you your "
    "any there's i'm it's don't can't".split()
)
# A question asking what something costs, and a money amount: docs rarely state prices, and a
# question about one ("cost per seat", "discounted pricing") matches the pages about the product well.
PRICE_QUESTION = re.compile(
    r"\bhow much\b[^.?!]*\b(?:cost|costs|charge|charges|pay|price|fee|fees)\b"
    r"|\b(?:price|prices|pricing|priced|discount|discounts|discounted)\b|\bcosts? per\b"
    r"|\bwhat does [^.?!]* cost\b",
    re.IGNORECASE,
)
MONEY = re.compile(r"[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:usd|eur|gbp|dollars?|euros?)\b", re.IGNORECASE)
# The edition a question is about, by the names users give it; the other edition's pages are penalised.
EDITION_NAMES = {
    "opensource": re.compile(r"\bcommunity (?:edition|version)\b|\bopen[- ]?source\b", re.IGNORECASE),
    "enterprise": re.compile(r"\blse\b|\benterprise\b", re.IGNORECASE),
}
OTHER_EDITION = {"opensource": "enterprise", "enterprise": "opensource"}
CALENDAR = frozenset(
    "january february march april may june july august september october november december "
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
# Chat shorthand and contractions typed without their apostrophe: words, not unknown things.
CHAT_WORDS = frozenset(
    "ppl pls plz thx btw imo imho afaik idk tbh fyi asap ur bc cuz rn wrt lol ok okay cant dont doesnt "
    "didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt im ive youre theyre "
    "thats whats wheres theres heres lets".split()
)
DENSE_EVIDENCE_WEIGHT = 0.5  # share of the best cosine in the evidence score (calibrated with BM25's part)
MAX_OVERLAP = 200  # longest chunk overlap removed when neighbours are joined (the chunker's is 100)
DUPLICATE_JACCARD = 0.8  # word-set overlap from which a chunk repeats a picked one
TITLE_MAX_WORDS = 4  # longer titles are sentences, never quoted whole in a question
TITLE_MAX_SHARE = 0.05  # a title printed in more chunks than this is a common phrase, not a page's name
TITLE_MIN_LIMIT = 10  # ... but in a small docs set, any title printed in up to 10 chunks counts
RELEASE_NUMBER = re.compile(r"\d+(?:\.\d+)+")  # a name `versions_named` gave a release note
# A question naming a release gets twice the title weight for its note: the notes' many items
# (row vectors) otherwise outweigh it ("which helm chart shipped with 2.22.0?" found 2.3.1's new chart).
RELEASE_NUMBER_FACTOR = 2.0
ROW_TOP = 5  # rows (table rows, release-note items) whose chunks get a share of `table_row_weight`
# An unknown term makes the search abstain only below this evidence: above it the question matches
# the docs in words and meaning, and the term is a synonym or an acronym they spell out ("SFT").
# Eight question sets: unanswerable questions with an unknown term scored 0.53-0.96 but one ("an SMB
# share as source storage", 1.02, now answered), and the two answerable ones it silenced 1.03 and 1.53.
UNKNOWN_TERM_MAX_EVIDENCE = 1.0
# A short question ("What is the Choices tag for?", "How do I export annotations?") can't score
# much BM25: it has two or three words to match. Its evidence fell below the threshold although
# the right page ranked first (24 of 30 such questions abstained). So a question whose best chunk
# holds most of its words' weight (best BM25 / the sum of its terms' IDF, a word in no page
# counting as the rarest) and that the dense side also finds (cosine ≥ COVERAGE_MIN_DENSE) gets
# up to COVERAGE_BONUS evidence: none from a coverage of COVERAGE_FROM, all of it from COVERAGE_FULL.
# None of the eleven question sets' 463 questions (15 words on average) reaches a coverage of 0.4,
# so their figures don't move; of 50 short answerable questions it answers 49 (17 before), of 29
# short off-topic ones it still abstains on 27, as before ("reset my Gmail password" and "the
# capital of France" matched pages about passwords and an NER example either way).
COVERAGE_FROM, COVERAGE_FULL = 0.4, 0.5
COVERAGE_MIN_DENSE = 0.4
COVERAGE_BONUS = 0.35
# Below this many chunks the evidence is divided by ln(1 + chunks) / ln(1 + SMALL_DOCS_CHUNKS):
# see the module docstring. 100 flattens the uncovered questions' median evidence across sizes
# (0.74 under 16 chunks, 0.79 for 16-40, 0.75 for 40-100, 0.76 for 100-400); 50 left 4 of 48
# covered questions silenced in sets of 16-40 chunks, 125 only lowered the abstentions further.
SMALL_DOCS_CHUNKS = 100
# A question asking which tag to use, and the tag reference pages (and their included fragments).
TAG_QUESTION = re.compile(
    r"\b(?:which|what|right|correct|best|a|any)(?: [\w-]+){0,2} tag\b(?!s)|\btag (?:do|should|would|is|for)\b",
    re.IGNORECASE,
)
TAG_PAGE = re.compile(r"(?:^|/)tags/")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased tokens; identifiers with _ . - / : are kept whole and also split into parts.

    No stemming: measured on both question sets, stemming (PyStemmer) helped the
    public set by one question and cost two on the dev set ("completions" meets
    every "completed").
    """
    out = []
    for text in texts:
        tokens = []
        for tok in re.findall(TOKEN_PATTERN, text.lower()):
            tokens.append(tok)
            parts = re.split(r"[\W_]+", tok)
            if len(parts) > 1:
                tokens.extend(p for p in parts if len(p) > 1)
        out.append([t for t in tokens if t not in STOPWORDS])
    return out


@lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Whole words of the MiniLM tokenizer's vocabulary, less proper names: ~19k common English words.

    The tokenizer also knows names ("arabic", "java", "paris"), and a name the
    docs never print is a thing they don't cover ("does it handle Arabic
    text?"), so `proper_names` are taken out. Empty if the model package is
    missing: the unknown-term rule is then off.
    """
    try:
        from qa.embeddings import LocalMiniLM

        lines = (LocalMiniLM.model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    except Exception as exc:  # noqa: BLE001 - any failure only switches the rule off
        log.warning("no word list for the unknown-term abstain rule (%s); it is off", exc)
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.isascii()) - proper_names()


@lru_cache(maxsize=1)
def _webster() -> frozenset[str]:
    """Webster's 2nd International's 236k words as printed (english-words' "web2" list), or none."""
    try:
        from english_words import get_english_words_set

        return frozenset(get_english_words_set(["web2"]))
    except Exception as exc:  # noqa: BLE001 - without it, names count as words and rare words as unknown
        log.warning("no Webster's word list (%s): the unknown-term rule knows fewer words", exc)
        return frozenset()


@lru_cache(maxsize=1)
def proper_names() -> frozenset[str]:
    """Words that Webster's 2nd has only capitalised: languages, peoples, places, given names.

    "arabic", "hebrew", "java"; not "oracle" or "discord", which are ordinary
    words too. Months and weekdays stay ordinary words: a question dates things
    ("since the April release").
    """
    web2 = _webster()
    names = {w.lower() for w in web2 if w[:1].isupper()} - {w for w in web2 if w.islower()}
    return frozenset(names - CALENDAR)


@lru_cache(maxsize=1)
def dictionary_words() -> frozenset[str]:
    """Every English word the rule forgives: the common ones, Webster's lower-case 200k, chat shorthand.

    Users write "malformed", "dupes" and "ppl"; the common list lacks them and
    the docs may too. Measured on a fresh question set, 5 of its 34 answerable
    questions abstained on such words before this list was added.
    """
    rare = {w for w in _webster() if w.islower() and w.isalpha() and w.isascii()}
    return english_words() | (rare - proper_names()) | CHAT_WORDS if english_words() else frozenset()


@dataclass(frozen=True)
class Lexicon:
    """The words the unknown-term rule knows, for one docs set (built with the index)."""

    docs: frozenset[str] = frozenset()  # every token of the docs
    docs_forms: frozenset[str] = frozenset()  # their base forms: the docs' "hardcoded" knows "hardcoding"
    common: frozenset[str] = frozenset()  # `english_words`: a typo is forgiven against these only
    dictionary: frozenset[str] = frozenset()  # `dictionary_words`
    docs_squashed: frozenset[str] = frozenset()  # the docs' "gpt-4o", "utf-8" as users type them: gpt4o, utf8

    @classmethod
    def of(cls, docs_vocab: Iterable[str]) -> Lexicon:
        docs = frozenset(docs_vocab)
        forms = frozenset(f for w in docs if w.isalpha() for f in word_forms(w))
        squashed = frozenset(re.sub(r"[-_./:]", "", w) for w in docs if not w.isalnum())
        return cls(
            docs=docs,
            docs_forms=forms,
            common=english_words(),
            dictionary=dictionary_words(),
            docs_squashed=squashed,
        )


def unstated_answer(query: str, passages: Sequence[str]) -> str:
    """What the question asks for that none of the passages states: "prices", or "".

    A price question ("how much does Enterprise cost per seat?") finds the pages
    about that product with high evidence, yet none of them can answer it unless
    it prints an amount ($30, 25 EUR). Asking *how* to track costs is no price question.
    """
    if PRICE_QUESTION.search(query) and not any(MONEY.search(p) for p in passages):
        return "prices"
    return ""


def abstains_by_rule(unknown: Sequence[str], unstated: str, evidence: float) -> bool:
    """Whether a rule silences the question whatever `abstain_threshold` says.

    A price no passage states always does; a term the docs never use does
    unless the question otherwise matches them strongly (`UNKNOWN_TERM_MAX_EVIDENCE`).
    """
    return bool(unstated) or (bool(unknown) and evidence < UNKNOWN_TERM_MAX_EVIDENCE)


def _edits1(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away (Norvig)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return {
        *(a + b[1:] for a, b in splits if b),
        *(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1),
        *(a + c + b[1:] for a, b in splits if b for c in letters),
        *(a + c + b for a, b in splits for c in letters),
    }


SUFFIXES = ("ing", "ed", "es", "s", "d", "er", "ers", "ly", "ment", "ments")
PREFIXES = (
    "re",
    "un",
    "de",
    "dis",
    "pre",
    "non",
    "over",
    "under",
    "mis",
    "sub",
    "multi",
    "auto",
    "co",
    "down",
)


def word_forms(word: str) -> set[str]:
    """What an inflected or prefixed word may be built on: "downgrading" → "downgrade",
    "rescaled" → "scale", "cidrs" → "cidr" (the dictionary holds base words only)."""
    forms = {word}
    for prefix in PREFIXES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 4:
            forms.add(word[len(prefix) :])
    for base in list(forms):
        for suffix in SUFFIXES:
            stem = base[: -len(suffix)]
            if base.endswith(suffix) and len(stem) >= 3:
                forms.update({stem, stem + "e"})
                if len(stem) >= 4 and stem[-1] == stem[-2]:  # "scrolling" → "scroll", "mapped" → "map"
                    forms.add(stem[:-1])
    return forms


def unknown_terms(query_tokens: Sequence[str], lexicon: Lexicon) -> list[str]:
    """Query words in neither the docs nor the dictionary, allowing for a typo; long numbers too.

    A word counts as known through its base form, against the docs' base forms
    too ("downgrading", "reshape", "discounted"; "hardcoding" where the docs say
    "hardcoded"), and "bouding" (bounding) and "teh" (the) are typos, not
    unknown things: a swapped letter pair is forgiven against the docs and the
    common words (Webster's 236k would forgive "coreml" as "cormel"), one edit
    of a word of 5+ letters against the docs' words only (one edit turns
    "zapier" into an English word, "rapier"). A number of 4+ digits counts
    unless it can be a year (1900-2099). A name with digits ("hdf5") counts
    when the docs never print it, even without its hyphen or dot ("gpt4o" for
    "gpt-4o"), and its letters are an unknown word too ("gpt5" is a GPT).
    """
    if not lexicon.common:
        return []
    docs, words = lexicon.docs, lexicon.dictionary
    found = []
    for tok in dict.fromkeys(query_tokens):
        if not tok.isascii() or tok in docs or tok in words:
            continue
        if tok.isdigit():  # a standard's or product's number the docs never print (ISO 27001)
            if len(tok) >= 4 and not (len(tok) == 4 and tok[:2] in ("19", "20")):
                found.append(tok)
        elif tok.isalnum() and not tok.isalpha():  # a format or product with its number: HDF5, HL7
            letters = re.match(r"[a-z]*", tok).group()
            known = tok in lexicon.docs_squashed or tok.removesuffix("s") in docs  # "mp4s"
            if not known and len(letters) >= 3 and _unknown_word(letters, lexicon):
                found.append(tok)
        elif len(tok) >= 3 and tok.isalpha() and _unknown_word(tok, lexicon):
            found.append(tok)
    return found


def _unknown_word(word: str, lexicon: Lexicon) -> bool:
    """Whether a word of letters is unknown: see `unknown_terms`."""
    docs, words = lexicon.docs, lexicon.dictionary
    forms = word_forms(word)  # the word itself among them
    if any(f in docs or f in words for f in forms) or forms & lexicon.docs_forms:
        return False
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    if any(s in docs or s in lexicon.common for s in swaps):
        return False
    # a typo of a docs word; a short word one letter away is another word ("wandb" is no "wand")
    return not (len(word) >= 5 and any(len(e) >= 5 and e in docs for e in _edits1(word)))


def _join(left: str, right: str) -> str:
    """Concatenate two neighbouring chunks, dropping the text they overlap by."""
    for size in range(min(MAX_OVERLAP, len(left), len(right)), 20, -1):
        if left.endswith(right[:size]):
            return left + right[size:]
    return f"{left}\n\n{right}"


FILE_SHARE = 0.5  # of a preferred section's weight, given to the other chunks of its file


@dataclass(frozen=True)
class _Index:
    """One consistent view of the store; `load` swaps in a new one, searches keep theirs."""

    docs: list[Document] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    bm25: bm25s.BM25 = field(default_factory=bm25s.BM25)
    position: dict[tuple[str, int], int] = field(default_factory=dict)  # (source, chunk no.) -> row
    titles: re.Pattern[str] | None = None  # page titles a question can name, longest first
    titled: dict[str, np.ndarray] = field(default_factory=dict)  # title -> rows of that page's chunks
    words: list[frozenset[str]] = field(default_factory=list)  # each chunk's body words, for duplicates
    row_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    row_chunks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # row -> its chunk
    adapter: np.ndarray | None = None  # the query map of qa.adapter, if one was fitted
    lexicon: Lexicon = field(default_factory=Lexicon)  # the words the unknown-term rule knows
    tiers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))  # each chunk's page edition
    tag_pages: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # chunk of a tag page?
    idf: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))  # BM25 IDF per token id
    files: dict[str, np.ndarray] = field(default_factory=dict)  # source -> rows of its chunks
    sections: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (source, section) -> rows

    @property
    def log_n(self) -> float:
        """~ the IDF of a term found in one chunk: scales BM25 scores to "rare terms matched"."""
        return math.log1p(len(self.docs))

    @property
    def evidence_scale(self) -> float:
        """What the evidence is divided by: 1 from `SMALL_DOCS_CHUNKS` chunks on, less below (docstring)."""
        return min(1.0, math.log1p(len(self.docs)) / math.log1p(SMALL_DOCS_CHUNKS))


def edition_asked(query: str) -> str:
    """ "opensource" or "enterprise" if the question names that edition (and not both), else ""."""
    named = [edition for edition, names in EDITION_NAMES.items() if names.search(query)]
    return named[0] if len(named) == 1 else ""


def asks_which_tag(query: str) -> bool:
    """Whether the question asks which tag to use ("which tag do I use…", "is there a tag that…")."""
    return bool(TAG_QUESTION.search(query))


def page_name(title: str) -> str:
    """A chunk's page title without the "(tags/video)" path an included fragment carries."""
    return re.sub(r"\s*\([^()]*\)$", "", title).strip()


def versions_named(title: str) -> list[str]:
    """The release a title names, as a question may write it: "… 2.22.0" → 2.22.0; "… 2.30.0" → also 2.30.

    A release note is titled "Label Studio Enterprise 2.22.0", and nobody types
    that whole: "which helm chart shipped with 2.22.0?", "since upgrading to 2.30".
    """
    found = re.search(r"(?:^|\s)v?(\d+\.\d+)(\.\d+)?(?:\.post\d+)?$", title)
    if not found:
        return []
    major_minor, patch = found.groups()
    if not patch:
        return [major_minor]
    return [major_minor + patch] + ([major_minor] if patch == ".0" else [])


def title_index(
    docs: Sequence[Document], bodies: Sequence[str]
) -> tuple[re.Pattern[str] | None, dict[str, np.ndarray]]:
    """A regex of the page titles a question may name, and the chunk rows of each useful one.

    A title ending in a release number also counts as named by that number (`versions_named`).
    Every title stays in the regex, longest first, so "Label Studio" is read as
    one name and never as the page "Label"; only titles printed in at most
    `TITLE_MAX_SHARE` of the chunks (or `TITLE_MIN_LIMIT`) get rows, and so a boost.
    `bodies` are the chunks' texts without their breadcrumb, where a title counts as printed.
    """
    rows: dict[str, list[int]] = defaultdict(list)
    for i, doc in enumerate(docs):
        name = page_name(str(doc.metadata.get("title", "")))
        if name and len(name.split()) <= TITLE_MAX_WORDS and re.search(r"\w", name):
            rows[name].append(i)
        for version in versions_named(name):
            rows[version].append(i)
    if not rows:
        return None, {}
    names = sorted(rows, key=len, reverse=True)  # the alternation then takes "TextArea" before "Text"
    regex = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    printed: dict[str, int] = defaultdict(int)
    for body in bodies:
        for name in set(regex.findall(body)):
            printed[name] += 1
    limit = max(TITLE_MAX_SHARE * len(docs), TITLE_MIN_LIMIT)
    return regex, {
        name: np.asarray(found, dtype=np.int64) for name, found in rows.items() if printed[name] <= limit
    }


def _repeats(i: int, picked: Sequence[int], words: Sequence[frozenset[str]]) -> bool:
    """Whether chunk `i` says nearly word for word what a picked chunk says (another page's copy)."""
    if not words:
        return False
    mine = words[i]
    return any(len(mine & words[j]) >= DUPLICATE_JACCARD * len(mine | words[j]) > 0 for j in picked)


class HybridRetriever(BaseRetriever):
    """A LangChain retriever over the ingested store; `search` also returns the abstain verdict."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: DocStore
    embeddings: Embeddings
    k: int = 5
    lexical_weight: float = 0.25
    title_weight: float = 0.15
    table_row_weight: float = 0.1
    edition_weight: float = 0.1
    tag_page_weight: float = 0.1
    max_per_file: int = 2
    context_chars: int = 2400
    abstain_threshold: float = 0.74
    abstain_unknown_terms: bool = True
    abstain_unstated_prices: bool = True
    query_adapter: bool = True
    reload_retry_seconds: float = 30.0  # a new index that failed to load is tried again after this
    _index: _Index | None = PrivateAttr(default=None)
    _loaded_state: tuple[int, ...] = PrivateAttr(default=())  # the store's state file at the last load
    _state: IndexState = PrivateAttr(default_factory=IndexState)  # what that state file said
    # the state file a load failed on, and when (time.monotonic): tried again only after a while
    _failed: tuple[tuple[int, ...], float] | None = PrivateAttr(default=None)
    _reload_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def load(self) -> HybridRetriever:
        """Read every chunk and its vector from Chroma and build the lexical index (~1 s for 6k chunks).

        `search` calls it again by itself once an ingest has finished (see `follow_ingest`).
        The state file is read before the chunks: if an ingest finishes in between, the
        stamp kept is the older one, and the next question loads again.
        """
        stamp, state = self.store.state_stamp(), self.store.read_state()
        docs, vectors = self.store.documents_and_vectors()
        row_mask = np.asarray([is_row(d) for d in docs], dtype=bool)
        rows, row_vectors = [d for d, r in zip(docs, row_mask, strict=True) if r], vectors[row_mask]
        docs, vectors = [d for d, r in zip(docs, row_mask, strict=True) if not r], vectors[~row_mask]
        bm25 = bm25s.BM25()
        crumbs, bodies = (
            zip(*(split_breadcrumb(d.page_content) for d in docs), strict=True) if docs else ((), ())
        )
        body_tokens = tokenize(bodies)
        if docs:  # the same tokens as the whole text's: no token spans the blank line after the breadcrumb
            bm25.index(
                [c + b for c, b in zip(tokenize(crumbs), body_tokens, strict=True)], show_progress=False
            )
        position = {}
        for i, doc in enumerate(docs):
            chunk = doc.metadata.get("chunk")
            if isinstance(chunk, int):
                position[(str(doc.metadata.get("source", "")), chunk)] = i
        titles, titled = title_index(docs, bodies)
        row_chunks = [
            position.get((str(r.metadata.get("source", "")), r.metadata.get("row_of"))) for r in rows
        ]
        known = np.asarray([c is not None for c in row_chunks], dtype=bool)  # else its chunk is gone
        self._index = _Index(  # one atomic swap
            docs=docs,
            vectors=vectors,
            bm25=bm25,
            position=position,
            titles=titles,
            titled=titled,
            words=[frozenset(t) for t in body_tokens],
            row_vectors=row_vectors[known],
            row_chunks=np.asarray([c for c in row_chunks if c is not None], dtype=np.int64),
            adapter=load_adapter(self.store.dir, vectors.shape[1])
            if self.query_adapter and len(docs)
            else None,
            tiers=np.asarray([str(d.metadata.get("tier", "")) for d in docs]),
            tag_pages=np.asarray([bool(TAG_PAGE.search(str(d.metadata.get("source", "")))) for d in docs]),
            lexicon=Lexicon.of(bm25.vocab_dict) if docs else Lexicon(),  # terms_not_in_docs: setting or not
            idf=_idf(bm25, len(docs)) if docs else np.zeros(0, dtype=np.float32),
            files=_group(docs, lambda m: str(m.get("source", ""))),
            sections=_group(docs, lambda m: (str(m.get("source", "")), str(m.get("section", "")))),
        )
        self._loaded_state, self._state = stamp, state  # set only once the index it describes is in place
        return self

    @property
    def size(self) -> int:
        return len(self._index.docs) if self._index else 0

    @property
    def state(self) -> IndexState:
        """The ingest state (commit, repo, ...) of the index being answered from, not of the file on disk.

        They differ while a new index is not loaded yet, or could not be: what the page shows
        and logs with an answer should name the commit the answer came from.
        """
        return self._state

    def follow_ingest(self) -> bool:
        """Reload if an ingest has finished since the last load; True if it did.

        Ingest writes the store's state file last, atomically, so a changed file means
        a complete new index: a running app answers from it from the next question on,
        without a restart (one stat per question; the reload takes ~1 s). If the new
        index can't be used (rebuilt with another embedding model, damaged), the old one
        keeps answering and the log says why; the load is tried again on a question at
        least `reload_retry_seconds` later (the cause may pass, as a store still being
        written does), not on every question, since a reload that fails costs as much as one
        that works. A restart shows a lasting problem on the page.
        """
        if self._index is None or not self._should_reload(self.store.state_stamp()):
            return False
        with self._reload_lock:
            stamp = self.store.state_stamp()
            if not self._should_reload(stamp):  # another request reloaded (or failed) meanwhile
                return False
            log.info("the docs index changed on disk: reloading it")
            try:
                with store_failures(self.store.dir):
                    self.store.check_model(self.embeddings)
                    self.load()
            except Exception:
                self._failed = (stamp, time.monotonic())
                log.exception(
                    "the new docs index can't be used; still answering from the one loaded before "
                    "(trying again in %.0f s)",
                    self.reload_retry_seconds,
                )
                return False
            self._failed = None
        return True

    def _should_reload(self, stamp: tuple[int, ...]) -> bool:
        """Whether the state file `stamp` is new, and not one that failed to load moments ago."""
        if stamp == self._loaded_state:
            return False
        if self._failed is not None and self._failed[0] == stamp:
            return time.monotonic() - self._failed[1] >= self.reload_retry_seconds
        return True

    def search(self, query: str, k: int | None = None, prefer: Sequence[Preferred] = ()) -> RetrievalResult:
        """Top-k passages for `query` (hits widened to their neighbours), and whether to abstain.

        `prefer`: places in the docs known to answer questions like this one (the sections
        an approved answer to a similar question cited, `qa.precedents`), each with the
        weight to add to its chunks; the rest of its file gets `FILE_SHARE` of it.
        """
        k = k or self.k
        self.follow_ingest()
        index = self._index or self.load()._index
        started = time.perf_counter()
        docs, vectors, bm25 = index.docs, index.vectors, index.bm25
        if not docs:
            return RetrievalResult(query=query, abstain=True, seconds=time.perf_counter() - started)
        tokens = tokenize([query])[0]
        qvec = np.asarray(self.embeddings.embed_query(query), dtype=np.float32)
        # einsum, not `@`: a BLAS matmul wakes OpenBLAS threads that fight torch's still-spinning
        # OpenMP threads for the 2 cores (p95 115 ms instead of 14 ms here); einsum runs on this thread.
        if index.adapter is not None:
            qvec = np.einsum("i,ij->j", qvec, index.adapter)
        qvec = qvec / max(float(np.sqrt(np.einsum("i,i->", qvec, qvec))), 1e-12)
        dense = np.einsum("ij,j->i", vectors, qvec)
        ids = bm25.get_tokens_ids(tokens)
        lexical = bm25.get_scores_from_ids(ids) if ids else np.zeros(len(docs), dtype=np.float32)
        best_lexical = float(lexical.max())
        fused = dense + self.lexical_weight * (lexical / best_lexical if best_lexical > 0 else lexical)
        if index.titles is not None and self.title_weight:
            for name in set(index.titles.findall(query)) & index.titled.keys():
                # a release number names one page exactly, where a title ("Video") may be a word of the question
                factor = RELEASE_NUMBER_FACTOR if RELEASE_NUMBER.fullmatch(name) else 1.0
                fused[index.titled[name]] += self.title_weight * factor
        if len(index.row_chunks) and self.table_row_weight:
            self._boost_rows(fused, np.einsum("ij,j->i", index.row_vectors, qvec), index)
        if self.edition_weight and (edition := edition_asked(query)):
            fused[index.tiers == OTHER_EDITION[edition]] -= self.edition_weight
        if self.tag_page_weight and asks_which_tag(query):
            fused[index.tag_pages] += self.tag_page_weight
        for place in prefer:  # its section gets the whole weight, the rest of its file FILE_SHARE of it
            if (rows := index.files.get(place.source)) is not None:
                fused[rows] += FILE_SHARE * place.weight
            if (rows := index.sections.get((place.source, place.section))) is not None:
                fused[rows] += (1 - FILE_SHARE) * place.weight

        picked = self._pick(fused, k, index)
        documents = [
            self._widen(
                i, index, meta_extra={"score": round(float(fused[i]), 5), "dense": round(float(dense[i]), 4)}
            )
            for i in picked
        ]
        best_dense = float(dense.max())
        evidence = math.log1p(best_lexical / index.log_n) + DENSE_EVIDENCE_WEIGHT * best_dense
        if best_dense >= COVERAGE_MIN_DENSE:
            covered = (_coverage(tokens, best_lexical, index) - COVERAGE_FROM) / (
                COVERAGE_FULL - COVERAGE_FROM
            )
            evidence += COVERAGE_BONUS * min(max(covered, 0.0), 1.0)
        evidence /= index.evidence_scale  # a small docs set scores lower, covered or not
        unknown = unknown_terms(tokens, index.lexicon) if self.abstain_unknown_terms else []
        unstated = (
            unstated_answer(query, [d.page_content for d in documents])
            if self.abstain_unstated_prices
            else ""
        )
        abstain = abstains_by_rule(unknown, unstated, evidence) or evidence < self.abstain_threshold
        return RetrievalResult(
            query=query,
            documents=documents,
            abstain=abstain,
            confidence=round(evidence, 4),
            seconds=time.perf_counter() - started,
            unknown_terms=unknown,
            unstated=unstated,
        )

    def _boost_rows(self, fused: np.ndarray, rows: np.ndarray, index: _Index) -> None:
        """Add up to `table_row_weight` to the chunks of the best-matching table rows, in place.

        The best row's chunk gets the whole weight, the next ones less, down to 0
        at the (ROW_TOP + 1)th row's cosine: what counts is how far a row stands out
        from the others, not its cosine (short texts score lower than chunks).
        """
        n = min(ROW_TOP + 1, len(rows))
        top = np.argpartition(-rows, n - 1)[:n]
        top = top[np.argsort(-rows[top], kind="stable")]
        floor = float(rows[top[-1]])
        spread = max(float(rows[top[0]]) - floor, 1e-6)
        boosted: set[int] = set()
        for j in top[:-1]:
            chunk = int(index.row_chunks[j])
            if chunk not in boosted:  # a chunk is boosted for its best row only
                boosted.add(chunk)
                fused[chunk] += self.table_row_weight * (float(rows[j]) - floor) / spread

    def terms_not_in_docs(self, query: str) -> list[str]:
        """The query's words that the docs never use and that are no English word either.

        A non-empty list makes `search` abstain (unless `abstain_unknown_terms` is off, or
        the rest of the question matches the docs strongly: `UNKNOWN_TERM_MAX_EVIDENCE`);
        the reply can name them: "the docs don't mention captcha".
        """
        index = self._index or self.load()._index
        if not index.docs:
            return []
        return unknown_terms(tokenize([query])[0], index.lexicon)

    def _pick(self, fused: np.ndarray, k: int, index: _Index) -> list[int]:
        """The best chunks, at most `max_per_file` per file, none inside a picked one's context or repeating it.

        Each file's best chunk comes first, in score order, and the files' other chunks
        after them, in score order: a page's second passage at rank 2 would push every
        other page down a place. Over the ten question sets MRR@5 rises 0.832 → 0.836, no
        set lower; the passages are the same, and so are hit@5 and fact recall.
        """
        picked: list[int] = []
        covered: set[int] = set()
        per_file: dict[str, int] = defaultdict(int)
        firsts: dict[str, int] = {}  # each file's best pick
        for i in np.argsort(-fused, kind="stable"):
            i = int(i)
            source = str(index.docs[i].metadata.get("source", ""))
            if i in covered or per_file[source] >= self.max_per_file or _repeats(i, picked, index.words):
                continue
            per_file[source] += 1
            picked.append(i)
            firsts.setdefault(source, i)
            covered.update(self._neighbours(i, index))
            if len(picked) == k:
                break
        lead = list(firsts.values())
        return lead + [i for i in picked if i not in lead]

    def _neighbours(self, i: int, index: _Index) -> list[int]:
        """Chunk `i` and the chunks around it in its file, in file order, up to `context_chars`."""
        docs = index.docs
        meta = docs[i].metadata
        source, chunk = str(meta.get("source", "")), meta.get("chunk")
        if not isinstance(chunk, int) or self.context_chars <= len(docs[i].page_content):
            return [i]
        parts = {chunk: i}
        total = len(docs[i].page_content)
        lo, hi = chunk - 1, chunk + 1
        grew = True
        while grew:
            grew = False
            for n in (hi, lo):  # the text after a hit usually finishes its answer: try it first
                j = index.position.get((source, n))
                if j is None or total + len(docs[j].page_content) > self.context_chars:
                    continue
                parts[n] = j
                total += len(docs[j].page_content)
                hi, lo = (hi + 1, lo) if n == hi else (hi, lo - 1)
                grew = True
                break
        return [parts[n] for n in sorted(parts)]

    def _widen(self, i: int, index: _Index, meta_extra: dict) -> Document:
        """The hit's chunk joined with its neighbours; headings repeat only where the section changes."""
        docs = index.docs
        parts = self._neighbours(i, index)
        text, last_crumb = "", None
        for j in parts:
            crumb, body = split_breadcrumb(docs[j].page_content)
            if crumb != last_crumb:
                piece = f"{crumb}\n\n{body}" if crumb else body
                text = f"{text}\n\n{piece}" if text else piece
            else:
                text = _join(text, body)
            last_crumb = crumb
        hit = docs[i]
        meta = dict(hit.metadata, **meta_extra)
        if len(parts) > 1:
            meta["chunks"] = [docs[j].metadata.get("chunk") for j in parts]
        return Document(id=hit.id, page_content=text, metadata=meta)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return self.search(query).documents


def _group(docs: Sequence[Document], key) -> dict:  # noqa: ANN001
    """Row numbers of `docs` grouped by `key(metadata)`."""
    groups: dict = defaultdict(list)
    for i, doc in enumerate(docs):
        groups[key(doc.metadata)].append(i)
    return {name: np.asarray(rows, dtype=np.int64) for name, rows in groups.items()}


def _idf(bm25: bm25s.BM25, n_docs: int) -> np.ndarray:
    """Each token's IDF as BM25 (Lucene's formula) weighs it, from its document frequency."""
    df = np.diff(np.asarray(bm25.scores["indptr"], dtype=np.float64))
    return np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)


def _coverage(tokens: Sequence[str], best_lexical: float, index: _Index) -> float:
    """How much of the question's word weight the best chunk matches: best BM25 / the terms' IDF sum.

    A term in no chunk counts with the weight of the rarest possible one (`log_n`), so a
    question about something else ("how do I bake bread?") covers little whatever it matches.
    """
    vocab = index.bm25.vocab_dict
    weight = sum(float(index.idf[vocab[t]]) if t in vocab else index.log_n for t in dict.fromkeys(tokens))
    return best_lexical / weight if weight > 0 else 0.0


def open_retriever(settings: Settings, embeddings: Embeddings | None = None) -> HybridRetriever:
    """The retriever over the settings' store, with the store's embedding model checked."""
    from qa.embeddings import make_embeddings

    embeddings = embeddings or make_embeddings(settings)
    store = DocStore(settings.index_dir)
    store.check_model(embeddings)
    return HybridRetriever(
        store=store,
        embeddings=embeddings,
        k=settings.retrieval_k,
        lexical_weight=settings.lexical_weight,
        title_weight=settings.title_weight,
        table_row_weight=settings.table_row_weight,
        edition_weight=settings.edition_weight,
        tag_page_weight=settings.tag_page_weight,
        max_per_file=settings.max_chunks_per_file,
        context_chars=settings.retrieval_context_chars,
        abstain_threshold=settings.abstain_threshold,
        abstain_unknown_terms=settings.abstain_unknown_terms,
        abstain_unstated_prices=settings.abstain_unstated_prices,
        query_adapter=settings.query_adapter,
    ).load()


__all__ = [
    "HybridRetriever",
    "Lexicon",
    "abstains_by_rule",
    "asks_which_tag",
    "dictionary_words",
    "edition_asked",
    "english_words",
    "open_retriever",
    "tokenize",
    "unknown_terms",
    "unstated_answer",
    "versions_named",
]
