"""The answer chain with langchain-core's fake chat model: what the user sees and what gets recorded."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from answer_testkit import KeywordRetriever, chunk, fake_chat

from qa.chain import AnswerChain, AnswerError, QuestionError
from qa.prompts import load_prompt
from settings import Settings


def run(chain: AnswerChain, question: str, history: list | None = None) -> tuple[list[str], object]:
    pieces, final = [], None
    for event in chain.stream(question, history):
        if event.done:
            final = event.answer
        else:
            pieces.append(event.text)
    assert final is not None, "the stream always ends with the answer"
    return pieces, final


def test_citations_map_to_the_numbered_chunks(retriever: KeywordRetriever, settings: Settings) -> None:
    llm = fake_chat("Pass `--no-browser` [1]; the port is set with `--port` [3] [9].")
    chain = AnswerChain(retriever, llm, settings, compact=False)

    _, answer = run(chain, "how do I start without opening a browser on another port")

    prompt = llm.prompts[0][-1].content
    for source in answer.sources:  # the prompt numbers each chunk with its file and section
        assert f"[{source.n}] {source.source} — {source.section}" in prompt
    assert [s.n for s in answer.cited] == [1, 3]  # [9] is not a chunk: ignored
    assert answer.cited[0].source == "docs/start.md"
    assert answer.cited[0].section == "Start Label Studio > Command line arguments"
    assert answer.cited[0].url.endswith("docs/start.md#command-line-arguments")
    assert answer.cited[1] == answer.sources[2]
    assert answer.citations_found
    # each cited passage comes with its lines that answer the question, shown under the answer
    assert answer.cited[0].quote == (
        "`-b`, `--no-browser` · N/A · `False` · Do not automatically open a web browser when starting; "
        "`--port` · `LABEL_STUDIO_PORT` · `8080` · Port to serve the app on."
    )
    assert answer.cited[0].as_dict()["quote"] == answer.cited[0].quote  # the log keeps it for reviewers
    assert "quote" not in answer.sources[0].as_dict()  # only cited sources are quoted


def test_uncited_answer_falls_back_to_the_top_sources(
    retriever: KeywordRetriever, settings: Settings
) -> None:
    chain = AnswerChain(retriever, fake_chat("Use the WEBHOOK_TIMEOUT variable."), settings, compact=False)

    _, answer = run(chain, "webhook timeout")

    assert not answer.citations_found
    assert answer.cited == answer.sources[:3]
    assert answer.cited[0].source == "docs/webhooks.md"


def test_streaming_yields_several_pieces_that_make_the_answer(
    retriever: KeywordRetriever, settings: Settings
) -> None:
    text = "Set `COLLECT_ANALYTICS` to `False` to disable data collection [1]."
    chain = AnswerChain(retriever, fake_chat(text), settings, compact=False)

    pieces, answer = run(chain, "how do I disable usage statistics collection?")

    assert len(pieces) > 5
    assert "".join(pieces) == answer.text == text


def test_the_prompt_version_comes_with_every_answer(retriever: KeywordRetriever, settings: Settings) -> None:
    full = AnswerChain(retriever, fake_chat("Use `--port` [1]."), settings, compact=False)
    compact = AnswerChain(retriever, fake_chat("Use --port."), settings, compact=True)

    assert full.answer("which port?").prompt_version == load_prompt("answer").version
    assert compact.answer("which port?").prompt_version == load_prompt("answer-compact").version
    assert load_prompt("answer").version.startswith("answer-v")


def test_prompt_style_picks_the_prompt_when_the_chain_is_not_told(
    retriever: KeywordRetriever, settings_for: Callable[..., Settings]
) -> None:
    def version(**overrides: object) -> str:
        chain = AnswerChain(retriever, fake_chat("Use --port [1]."), settings_for(**overrides))
        return chain.answer("which port?").prompt_version

    assert version() == load_prompt("answer-compact").version  # auto, the bundled local model
    assert version(openai_api_key="k") == load_prompt("answer").version  # auto, a capable model
    assert version(prompt_style="chat") == load_prompt("answer").version
    assert version(openai_api_key="k", prompt_style="compact") == load_prompt("answer-compact").version


def test_follow_up_is_condensed_with_the_history(retriever: KeywordRetriever, settings: Settings) -> None:
    llm = fake_chat("How do I raise the webhook timeout?", "Set `WEBHOOK_TIMEOUT` [1].")
    chain = AnswerChain(retriever, llm, settings, compact=False)
    history = [
        ("user", "My webhook receiver is slow and Label Studio gives up on it."),
        ("assistant", "Webhook connections time out after 1 second [1]."),
    ]

    pieces, answer = run(chain, "can I raise that?", history)

    condense_prompt = "\n".join(str(m.content) for m in llm.prompts[0])
    assert "My webhook receiver is slow" in condense_prompt  # the history was read
    assert "can I raise that?" in condense_prompt
    assert retriever.queries == [
        "How do I raise the webhook timeout?"
    ]  # the standalone question was searched
    assert "How do I raise the webhook timeout?" in llm.prompts[1][-1].content  # and answered
    assert answer.standalone_question == "How do I raise the webhook timeout?"
    assert answer.condense == load_prompt("condense").version
    assert answer.question == "can I raise that?"
    assert "".join(pieces) == "Set `WEBHOOK_TIMEOUT` [1]."


def test_no_history_means_no_condense_call(retriever: KeywordRetriever, settings: Settings) -> None:
    llm = fake_chat("Use `--port` [1].")
    answer = AnswerChain(retriever, llm, settings, compact=False).answer("which port does it use?")

    assert len(llm.prompts) == 1
    assert answer.condense == "none"
    assert answer.standalone_question == "which port does it use?"


def test_gradio_message_history_is_understood(retriever: KeywordRetriever, settings: Settings) -> None:
    llm = fake_chat("How do I disable analytics?", "Set `COLLECT_ANALYTICS` [1].")
    history = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Does Label Studio collect usage statistics?"}],
        },
        {"role": "assistant", "content": "Yes, it collects usage statistics [1]."},
        {"role": "assistant", "content": "docs/security.md", "metadata": {"title": "Sources"}},
    ]

    AnswerChain(retriever, llm, settings, compact=False).answer("how do I turn it off?", history)

    condense_prompt = "\n".join(str(m.content) for m in llm.prompts[0])
    assert "Does Label Studio collect usage statistics?" in condense_prompt
    assert "Yes, it collects usage statistics" in condense_prompt
    assert "Sources" not in condense_prompt


def test_compact_style_condenses_without_the_model(retriever: KeywordRetriever, settings: Settings) -> None:
    llm = fake_chat("Set WEBHOOK_TIMEOUT.")
    chain = AnswerChain(retriever, llm, settings, compact=True)

    answer = chain.answer("can I raise it?", [("user", "webhook timeout"), ("assistant", "1 second")])

    assert len(llm.prompts) == 1  # tiny models answer instead of rewriting: no condense call
    assert answer.standalone_question == "webhook timeout can I raise it?"
    assert answer.condense == "concat"
    assert not answer.cut_short  # the model ended the answer itself
    prompt = llm.prompts[0][-1].content
    assert "You can adjust the timeout by setting the environment variable `WEBHOOK_TIMEOUT`." in prompt
    assert "--no-browser" not in prompt  # the extract keeps only what shares words with the question
    assert [s.source for s in answer.cited] == ["docs/webhooks.md"]  # the chunk the extract came from
    assert answer.citations_found  # what the model read: "Sources", not "Closest sources (not cited…)"
    assert answer.cited[0].quote.startswith("Webhook connections time out after 1 second. You can adjust the")


@pytest.mark.parametrize(
    ("history", "question", "searched"),
    [
        # a short new topic that finds the docs on its own is not glued to the last one
        (["webhook timeout"], "usage statistics?", "usage statistics?"),
        # a long question says what its "it" is
        (
            ["webhook timeout"],
            "Label Studio opens a browser tab every time I start the server, how do I stop it?",
            "Label Studio opens a browser tab every time I start the server, how do I stop it?",
        ),
        # "thanks!" in between is skipped: the follow-up is about the last question that stood alone
        (["webhook timeout", "thanks!"], "can I raise it?", "webhook timeout can I raise it?"),
        # a chain of follow-ups stays on its topic
        (["webhook timeout", "and the retries?"], "can I raise it?", "webhook timeout can I raise it?"),
    ],
)
def test_compact_style_glues_only_when_the_conversation_finds_the_docs_better(
    retriever: KeywordRetriever, settings: Settings, history: list[str], question: str, searched: str
) -> None:
    chain = AnswerChain(retriever, fake_chat("Set WEBHOOK_TIMEOUT."), settings, compact=True)
    turns = [turn for asked in history for turn in (("user", asked), ("assistant", "an answer"))]

    answer = chain.answer(question, turns)

    assert answer.standalone_question == searched


def test_compact_style_follow_up_naming_another_thing_leaves_out_what_it_replaces(settings: Settings) -> None:
    storage = KeywordRetriever(
        [
            chunk(
                "docs/storage.md",
                "Storage > Amazon S3",
                "Connect an S3 bucket as source storage in the project.",
            ),
            chunk(
                "docs/storage.md", "Storage > Google Cloud Storage", "Connect a GCS bucket as source storage."
            ),
            chunk("docs/export.md", "Export > Formats", "Export annotations as JSON, CSV or COCO."),
        ]
    )
    chain = AnswerChain(storage, fake_chat("Grant access to the bucket."), settings, compact=True)
    history = [
        ("user", "How do I connect an S3 bucket as source storage?"),
        ("assistant", "Add it in settings."),
    ]

    answer = chain.answer("and for GCS?", history)

    # glued whole, the S3 words tie the S3 section with the GCS one and it comes first
    assert answer.standalone_question == "How do I connect an bucket as source storage? and for GCS?"
    assert answer.sources[0].section == "Storage > Google Cloud Storage"


@pytest.mark.parametrize(
    ("question", "searched"),
    [
        ("What's the best pizza in Naples?", "What's the best pizza in Naples?"),
        ("Is it possible to disable usage statistics?", "Is it possible to disable usage statistics?"),
        ("and for the port?", "webhook timeout and for the port?"),
        (
            "how do I do that from the command line?",
            "webhook timeout how do I do that from the command line?",
        ),
    ],
)
def test_compact_style_glues_the_previous_question_only_to_a_follow_up(
    retriever: KeywordRetriever, settings: Settings, question: str, searched: str
) -> None:
    chain = AnswerChain(retriever, fake_chat("Set WEBHOOK_TIMEOUT."), settings, compact=True)

    answer = chain.answer(question, [("user", "webhook timeout"), ("assistant", "1 second")])

    assert answer.standalone_question == searched
    assert answer.condense == ("concat" if searched != question else "none")


def test_a_new_topic_after_a_covered_one_still_abstains(
    retriever: KeywordRetriever, settings: Settings
) -> None:
    llm = fake_chat("Set WEBHOOK_TIMEOUT.")
    chain = AnswerChain(retriever, llm, settings, compact=True)

    answer = chain.answer(
        "what's the best pizza recipe?", [("user", "webhook timeout"), ("assistant", "1 s")]
    )

    assert answer.abstained and not llm.prompts


def test_abstain_replies_without_calling_the_model(retriever: KeywordRetriever, settings: Settings) -> None:
    llm = fake_chat()  # any call would fail: it has no reply to give
    chain = AnswerChain(retriever, llm, settings, compact=False)

    pieces, answer = run(chain, "whats a good buttermilk substitute for pancakes")

    assert llm.prompts == []
    assert answer.abstained
    assert answer.cited == []
    assert "don't seem to cover" in answer.text
    assert '"whats a good buttermilk substitute for pancakes"' in answer.text  # says what it searched
    assert "docs/start.md" in answer.text  # and the closest passages it looked at
    # ... whose lines the user may read and judge: one per place the reply names, quoted
    places = [(c.source, c.section) for c in answer.closest]
    assert places[0] == ("docs/start.md", "Start Label Studio > Command line arguments")
    assert len(set(places)) == len(places) <= 3 and all(c.quote for c in answer.closest)
    assert all(f"{c.source} — {c.section}" in answer.text for c in answer.closest)
    assert answer.prompt_version == load_prompt("abstain").version
    assert "".join(pieces) == answer.text


def test_abstain_names_the_terms_the_docs_never_use(retriever: KeywordRetriever, settings: Settings) -> None:
    class NamingRetriever(KeywordRetriever):  # what HybridRetriever reports for such words
        def search(self, query: str):  # noqa: ANN202
            result = super().search(query)
            result.abstain, result.unknown_terms = True, ["lidar", "cuboids"]
            return result

    chain = AnswerChain(NamingRetriever(retriever.documents), fake_chat(), settings, compact=False)
    _, answer = run(chain, "can I annotate lidar point clouds with cuboids?")
    assert answer.abstained
    assert 'The docs never mention "lidar" or "cuboids".' in answer.text


def test_a_question_in_another_language_is_told_to_ask_in_english(
    retriever: KeywordRetriever, settings: Settings
) -> None:
    class NamingRetriever(KeywordRetriever):  # HybridRetriever on "¿Cómo exporto mis anotaciones…?"
        def search(self, query: str):  # noqa: ANN202
            result = super().search(query)
            result.abstain, result.unknown_terms = True, ["anotaciones"]
            return result

    chain = AnswerChain(NamingRetriever(retriever.documents), fake_chat(), settings, compact=False)
    _, answer = run(chain, "¿Cómo exporto mis anotaciones al formato COCO?")
    assert answer.abstained
    assert "looks like it is in Spanish" in answer.text and "asked in English" in answer.text
    assert "never mention" not in answer.text  # its words are unknown because they are Spanish

    _, english = run(chain, "how do I export my annotations to the COCO format?")
    assert "English" not in english.text and 'never mention "anotaciones"' in english.text


def test_abstain_says_the_passages_state_no_price(retriever: KeywordRetriever, settings: Settings) -> None:
    class PriceRetriever(KeywordRetriever):  # what HybridRetriever reports for a price no passage states
        def search(self, query: str):  # noqa: ANN202
            result = super().search(query)
            result.abstain, result.unstated = True, "prices"
            return result

    chain = AnswerChain(PriceRetriever(retriever.documents), fake_chat(), settings, compact=False)
    _, answer = run(chain, "how much does the enterprise edition cost per seat?")
    assert answer.abstained and "The passages I found state no prices." in answer.text


@pytest.mark.parametrize("question", ["", "   \n", None])
def test_empty_question_is_refused(retriever: KeywordRetriever, settings: Settings, question: object) -> None:
    chain = AnswerChain(retriever, fake_chat(), settings)
    with pytest.raises(QuestionError, match="type a question"):
        list(chain.stream(question))  # type: ignore[arg-type]
    assert retriever.queries == []


def test_over_long_question_is_refused_with_the_limit(
    retriever: KeywordRetriever, settings: Settings
) -> None:
    chain = AnswerChain(retriever, fake_chat(), settings)
    question = "x" * (settings.max_question_chars + 1)
    with pytest.raises(QuestionError, match=f"limit is {settings.max_question_chars:,}.*MAX_QUESTION_CHARS"):
        list(chain.stream(question))
    assert retriever.queries == []
    assert isinstance(QuestionError("x"), ValueError)


def test_a_failing_model_becomes_an_answer_error(retriever: KeywordRetriever, settings: Settings) -> None:
    chain = AnswerChain(retriever, fake_chat(), settings, compact=False)  # no reply left: it raises
    with pytest.raises(AnswerError, match="went wrong while answering"):
        chain.answer("which port?")


def test_history_items_must_be_messages(retriever: KeywordRetriever, settings: Settings) -> None:
    chain = AnswerChain(retriever, fake_chat("x"), settings)
    with pytest.raises(ValueError, match="history item 0"):
        chain.answer("which port?", [42])


def test_timings_and_model_are_recorded(retriever: KeywordRetriever, settings: Settings) -> None:
    answer = AnswerChain(retriever, fake_chat("Use `--port` [1]."), settings, compact=False).answer("port?")

    assert 0 < answer.retrieval_ms <= answer.first_token_ms <= answer.total_ms
    assert answer.model == "generic-fake-chat-model"
    data = answer.as_dict()
    assert data["cited"][0]["source"] == "docs/start.md"
    assert data["prompt_version"] == answer.prompt_version
