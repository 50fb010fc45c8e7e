"""Every setting of the app, in one place.

Values come from the environment, then from a `.env` file in the working
directory, then from the project's own `.env` (beside this file), then from the
defaults below. `.env.example` documents each one. A relative DATA_DIR is the
project's folder of that name wherever a command runs: `python /path/app.py gaps`
run from another directory must not start an empty log there.
Modules receive a `Settings` object instead of reading `os.environ` themselves,
so tests can point all state at a temp dir by setting `DATA_DIR`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_REPO = "https://github.com/HumanSignal/label-studio"
PROJECT_DIR = Path(__file__).resolve().parent
# The .env files settings are read from, later ones winning: the project's, then the working directory's.
ENV_FILES = (PROJECT_DIR / ".env", Path(".env"))


class Settings(BaseSettings):
    """Runtime configuration (environment variables are the upper-case names)."""

    model_config = SettingsConfigDict(env_file=ENV_FILES, env_file_encoding="utf-8", extra="ignore")

    # --- state -------------------------------------------------------------
    data_dir: Path = Path("./data")

    # --- ingest ------------------------------------------------------------
    docs_repo: str = DEFAULT_REPO
    docs_ref: str = ""  # empty: the remote's default branch
    docs_web_base: str = ""  # web links' base for non-GitHub remotes, e.g. https://github.com/OWNER/REPO
    docs_glob: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["**/*.md"])
    # Seconds between the running app's updates of the docs (`python ingest.py`); 0: only when asked.
    ingest_interval: float = 0.0
    chunk_size: int = 800  # chars: ≤ ~256 MiniLM tokens, so all of it is embedded; tables: ~300-char rows
    embeddings: Literal["local", "openai"] = "local"
    openai_embeddings_model: str = "text-embedding-3-small"

    # --- answering ---------------------------------------------------------
    openai_api_key: str = ""
    openai_base_url: str = ""
    openai_model: str = "gpt-4.1-mini"
    llm_timeout: float = 60.0
    retrieval_k: int = 5
    # Abstain below this evidence score: log1p(best BM25 / ln(chunks)) + 0.5 * best cosine, scaled up
    # under 100 chunks (qa/retrieval.py).
    # 0.74 over 11 sets (371 answerable, 92 unanswerable, eight written blind): 87 % abstained, 6 false
    # abstentions (1.6 %, at most 2 per set); 0.72: 84 % and 4 false; 0.82: 90 % but 5.4 % false.
    # Calibrate on your own docs: python -m qa.evaluate QUESTIONS --calibrate.
    abstain_threshold: float = 0.74
    # abstain when the question names a non-word the docs never use, unless it matches them strongly (>= 1.0)
    abstain_unknown_terms: bool = True
    abstain_unstated_prices: bool = True  # abstain when the question asks a price and no passage states one
    # BM25 (scaled to the best hit = 1) added to the cosine when ranking. 0.25 over seven question sets:
    # MRR@5 0.836 at 0.3, 0.845-0.854 from 0.2 to 0.27 (the title, row and tag boosts carry the words too).
    lexical_weight: float = 0.25
    title_weight: float = 0.15  # added to a page's chunks when the question names its title ("Video tag")
    # Added to the chunks of the 5 table rows a question matches best, the most for the row that stands
    # out most: every table row ("canRotate | Show or hide rotation control"), and every item of a release
    # note, is also embedded alone at ingest. 0 = off, and the next ingest stores no row vectors.
    table_row_weight: float = 0.1
    # Taken off the chunks of the other edition's pages (front matter `tier`) when a question names one:
    # "community edition"/"open source" or "LSE"/"Enterprise". 0 = off.
    edition_weight: float = 0.1
    # Added to the tag reference pages (paths with a `tags/` folder) when a question asks which tag to
    # use ("which tag do I use…", "is there a tag that…"): templates using the tag otherwise win. 0 = off.
    tag_page_weight: float = 0.1
    # Map question vectors with a linear adapter learned at ingest from the docs' own headings
    # (qa/adapter.py; docs sets of 500+ chunks): MRR@5 on the two blind sets +0.02, public hit -1 question.
    query_adapter: bool = True
    max_chunks_per_file: int = 2  # at most this many of the k passages per file; second ones last
    retrieval_context_chars: int = 2400  # each hit is widened to its neighbouring chunks up to this size
    max_question_chars: int = 2000
    llm_max_tokens: int = 512  # cap on the length of one answer, in tokens
    llm_temperature: float = 0.0  # 0 = most grounded; ignored by models that only allow 1 (gpt-5)
    prompt_style: Literal["auto", "chat", "compact"] = "auto"  # auto: compact for the local model
    context_max_chars: int = 12000  # cap on the doc text put into one prompt (lower chunks dropped)
    history_messages: int = 6  # recent chat messages the follow-up condensing step reads
    # A reviewer's verdict on an earlier answer is reused when a question's embedding is at least this
    # close to that answer's question (qa/precedents.py: no two different questions of the eval sets
    # reach 0.90; rewordings score 0.87-0.97). 0 = off.
    reviewed_answer_match: float = 0.85
    # What an approved answer cited is lifted in the search for questions at least this close to its
    # question (cosine; 0 = off), by up to this weight (the same question: all of it): qa/precedents.py.
    # What an answer rejected for "wrong passages" cited is lowered by as much. bench/knowledge.py:
    # rewordings of approved questions MRR@5 0.754 -> 0.837, of rejected ones 0.439 -> 0.505; the
    # eleven sets with the other questions' verdicts unchanged (0.828).
    reviewed_sources_match: float = 0.55
    reviewed_sources_weight: float = 0.3
    # A model pre-rates each answer Good or Bad with a reason, for reviewers (qa/judge.py): a hint beside
    # the answer, never a verdict. auto: on unless the bundled local model answers (bench/judge.py: it
    # gave a verdict in 4 of 99 replies). PRE_RATE_MODEL: the judge's model on the same server; empty = OPENAI_MODEL.
    pre_rate: Literal["auto", "on", "off"] = "auto"
    pre_rate_model: str = ""
    revise_model: str = ""  # the model that drafts answer-prompt revisions (qa.revise); empty = OPENAI_MODEL

    # --- local model (used when no OPENAI_API_KEY is set) -------------------
    local_llm_port: int = 8765
    local_llm_threads: int = 2
    local_llm_ctx: int = 4096
    local_llm_model: str = ""  # path of another chat GGUF; empty = bundled SmolLM2-135M-Instruct
    local_llm_context_chunks: int = 3  # top chunks the local model's extract is drawn from
    local_llm_context_chars: int = 800  # size of that extract (it reads ~200 tokens/s, and gets lost in more)
    local_llm_max_tokens: int = 256  # answer cap for the local model (~45 tokens/s; it rambles when let)

    # --- web app -----------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 7860
    public_url: str = ""  # how Label Studio reaches the app (webhooks); default http://HOST:PORT
    reviewer_password: str = ""
    # Questions offered under an empty chat, separated by "|". "auto": four about the Label Studio docs
    # when those are what is ingested, none for another repo; empty: none.
    chat_examples: str = "auto"

    # --- feedback / Label Studio --------------------------------------------
    label_studio_url: str = ""
    label_studio_api_key: str = ""
    label_studio_project: str = "Docs QA feedback"
    label_studio_port: int = 8080  # the local Label Studio of scripts/labelstudio.sh (`make run`)
    label_studio_timeout: float = 10.0
    webhook_secret: str = ""
    sync_interval: float = 5.0
    # How often the sync worker pulls annotations changed in Label Studio (catches missed webhooks), seconds.
    label_studio_pull_interval: float = 30.0

    @field_validator("data_dir")
    @classmethod
    def _in_the_project(cls, value: Path) -> Path:
        """A relative DATA_DIR (`./data`, the default) is under the project folder, as scripts/*.sh take it."""
        return value if value.is_absolute() else PROJECT_DIR / value

    @field_validator("docs_glob", mode="before")
    @classmethod
    def _split_globs(cls, value: object) -> object:
        """Accept `DOCS_GLOB="docs/**/*.md,README.md"` from the environment."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    # --- derived paths (all state lives under DATA_DIR) ----------------------
    @cached_property
    def repo_dir(self) -> Path:
        return self.data_dir / "repo"

    @cached_property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @cached_property
    def prompts_dir(self) -> Path:
        """Prompt files that replace the bundled ones (an adopted revision), and revisions drafted."""
        return self.data_dir / "prompts"

    @cached_property
    def feedback_db(self) -> Path:
        return self.data_dir / "feedback.sqlite"

    @cached_property
    def conversations_db(self) -> Path:
        """The chat's conversations of each browser, listed beside the chat (ui/conversations.py)."""
        return self.data_dir / "conversations.sqlite"

    @property
    def app_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def local_model_answers(self) -> bool:
        """No OPENAI_API_KEY and no OPENAI_BASE_URL: the embedded local model answers (`qa.llm`)."""
        return not (self.openai_api_key or self.openai_base_url)

    @property
    def pre_rates(self) -> bool:
        """PRE_RATE: on, off, or auto (on unless the local model answers: it gives no verdicts).

        Here, not in qa/: the report (feedback/) says why no pre-ratings come by the same rule.
        """
        return self.pre_rate == "on" or (self.pre_rate == "auto" and not self.local_model_answers)


class SettingsError(ValueError):
    """A setting's value can't be used; the message names it, says why, and where to fix it."""


def get_settings(**overrides: object) -> Settings:
    """Read settings now (not at import), so a changed env or `.env` is seen.

    A value that can't be used (`PORT=80a`, `ABSTAIN_THRESHOLD=high`) raises SettingsError
    naming each such setting as it is written in `.env`, not pydantic's report.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"{'_'.join(str(part) for part in error['loc'][:1]).upper() or 'a setting'}="
            f"{error.get('input')!r}: {error['msg']}"
            for error in exc.errors()
        ]
        raise SettingsError(
            f"{'; '.join(problems)}. Fix it in the environment or .env, or remove it for the default "
            "(.env.example describes every setting)."
        ) from None
