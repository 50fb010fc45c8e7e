"""Retrieval behaviour that matters to users, on a real store with real local embeddings."""

from __future__ import annotations

from qa.retrieval import Lexicon, asks_which_tag, edition_asked, unknown_terms, versions_named


def sources(result) -> list[str]:  # noqa: ANN001
    return [d.metadata["source"] for d in result.documents]


def test_an_exact_identifier_retrieves_the_file_that_defines_it(retriever_for) -> None:
    retriever = retriever_for()
    result = retriever.search("what is LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT for?")
    assert sources(result)[0] == "guide/storage.md"
    assert not result.abstain
    flag = retriever.search("what does the --no-browser flag do")
    assert sources(flag)[0] == "guide/start.md"


def test_an_off_topic_question_abstains_and_still_shows_what_it_searched(retriever_for) -> None:
    result = retriever_for().search("how many moons does jupiter have?")
    assert result.abstain
    assert result.documents  # the closest passages, for "here is what I looked at"


def test_a_question_about_something_the_docs_never_name_abstains(retriever_for) -> None:
    question = "can I put a captcha on the image import dialog?"
    result = retriever_for().search(question)
    assert result.abstain and result.unknown_terms == ["captcha"]  # in no page, and no English word
    relaxed = retriever_for(ABSTAIN_UNKNOWN_TERMS="false", ABSTAIN_THRESHOLD="0").search(question)
    assert not relaxed.abstain
    typo = retriever_for().search("how do I start without the browzer tab?")  # a typo is not a new thing
    assert not typo.abstain and sources(typo)[0] == "guide/start.md"


def test_names_and_numbers_the_docs_never_use_are_named_in_the_verdict(retriever_for) -> None:
    retriever = retriever_for()
    assert retriever.terms_not_in_docs("is the export ISO 27001 certified?") == ["27001"]
    # one letter from the docs' "data", but a short word that close is another word, not a typo
    assert retriever.terms_not_in_docs("can I chart the annotations in datav?") == ["datav"]
    assert retriever.terms_not_in_docs("which port, 8081?") == []  # the docs print it
    assert retriever.terms_not_in_docs("export the rectangle coordinates") == []
    # inflected, prefixed or a year: ordinary words the dictionary holds in their base form
    assert retriever.terms_not_in_docs("nothing before 1950 got rescaled, reshaped or downgraded") == []
    # a name is no ordinary word: the tokenizer knows "arabic", the docs never print it
    assert retriever.terms_not_in_docs("does the export keep arabic or hebrew text?") == ["arabic", "hebrew"]
    assert retriever.terms_not_in_docs("since the april release on a monday the export is slow") == []
    assert retriever.terms_not_in_docs("can it export to an oracle?") == []  # an ordinary word as well
    # how users write: rarer words, chat shorthand, a contraction without its apostrophe
    assert retriever.terms_not_in_docs("its malformed, i cant merge the dupes, ppl lose work") == []
    assert retriever.terms_not_in_docs("run a coreml model") == ["coreml"]  # no typo of Webster's "cormel"


def test_one_unknown_term_does_not_silence_a_question_the_docs_match_strongly(retriever_for) -> None:
    # an acronym the docs never spell ("SFT"), in a question that is plainly about them
    result = retriever_for().search("what is LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT for in our sft pipeline?")
    assert result.unknown_terms == ["sft"]
    assert not result.abstain and sources(result)[0] == "guide/storage.md"
    weak = retriever_for().search("can I put a captcha on the image import dialog?")  # a weak match: silenced
    assert weak.abstain and weak.confidence < result.confidence


def test_a_word_of_the_docs_family_is_known() -> None:
    lexicon = Lexicon.of(["hardcoded", "export"])
    assert unknown_terms(["hardcoding", "exporting"], lexicon) == []  # the docs' "hardcoded"
    assert unknown_terms(["lidar"], lexicon) == ["lidar"]


def test_a_name_with_digits_is_unknown_when_the_docs_never_print_it() -> None:
    lexicon = Lexicon.of(["gpt-4o", "gpt", "4o", "mp4", "export"])  # tokens as `tokenize` gives them
    # "gpt4o" is the docs' "gpt-4o", "gpt5" another GPT, "mp4s" their plural, "h264" too short to tell
    assert unknown_terms(["gpt4o", "gpt5", "mp4s", "h264", "hdf5"], lexicon) == ["hdf5"]


def test_a_price_no_passage_states_abstains(retriever_for) -> None:
    question = "how much does the Label Studio server cost per month?"
    result = retriever_for(ABSTAIN_THRESHOLD="0").search(question)  # the pages about the server match well
    assert result.abstain and result.unstated == "prices"
    assert not retriever_for(ABSTAIN_THRESHOLD="0", ABSTAIN_UNSTATED_PRICES="false").search(question).abstain


def test_only_a_price_question_without_an_amount_is_a_price_verdict() -> None:
    from qa.retrieval import unstated_answer

    page = ["Start the server with label-studio start."]
    assert unstated_answer("do you offer discounted pricing for universities?", page) == "prices"
    assert unstated_answer("what does the enterprise plan cost?", page) == "prices"
    assert (
        unstated_answer("how much does the enterprise plan cost?", ["Credits worth $5.00 are included."])
        == ""
    )
    assert unstated_answer("how do I track the costs of each model run?", page) == ""  # how, not how much
    assert unstated_answer("we pay for the cloud plan: do we get plugins?", page) == ""


def test_a_short_question_the_docs_answer_is_answered_and_a_short_off_topic_one_is_not(retriever_for) -> None:
    # two or three words can't add up to much BM25; what counts is that the best page holds them all
    retriever = retriever_for()
    for question, page in [
        ("What are project settings?", "guide/project_settings.md"),  # evidence 0.56 without coverage
        ("What are categories?", "templates/hierarchy.md"),  # 0.71
        ("Taxonomy tag", "tags/taxonomy.md"),
    ]:
        result = retriever.search(question)
        assert not result.abstain and sources(result)[0] == page, (question, result.confidence)
    for question in ["How do I bake bread?", "What is the weather today?"]:
        assert retriever.search(question).abstain, question


def test_the_abstain_threshold_is_a_setting(retriever_for) -> None:
    question = "how do I start the server without opening a browser tab?"
    default = retriever_for().search(question)
    assert not default.abstain
    strict = retriever_for(ABSTAIN_THRESHOLD=str(default.confidence + 0.01)).search(question)
    assert strict.abstain
    lenient = retriever_for(ABSTAIN_THRESHOLD="0", ABSTAIN_UNKNOWN_TERMS="false")
    assert not lenient.search("how many moons does jupiter have?").abstain


def test_a_hit_comes_with_its_neighbouring_chunks(retriever_for) -> None:
    result = retriever_for().search("how many days are snapshots retained? snapshot_retention_days")
    top = result.documents[0]
    assert top.metadata["source"] == "guide/export.md"
    assert "snapshot_retention_days" in top.page_content
    assert top.page_content.count("Projects keep their tasks") >= 3  # the chunks before it came along
    assert len(top.page_content) <= retriever_for().context_chars + 200


def test_parameter_tables_are_found_row_by_row(retriever_for) -> None:
    result = retriever_for().search("what frame rate does the Video tag assume by default?")
    top = result.documents[0]
    assert top.metadata["source"] == "includes/tags/video.md"
    # no front matter of its own: named after the page that includes it, and by its path
    assert top.metadata["title"] == "Video (tags/video)"
    assert "`24`" in top.page_content and "<code>" not in top.page_content


def test_a_question_about_one_attribute_finds_its_table_row(retriever_for) -> None:
    question = (
        "people keep accidentally turning ellipses while resizing them. can i switch off the rotate handle?"
    )
    result = retriever_for().search(question)
    assert sources(result)[0] == "tags/ellipse.md"
    assert "canRotate" in result.documents[0].page_content
    assert all(d.metadata.get("kind") != "row" for d in result.documents)  # rows point at chunks, never shown
    without_rows = retriever_for(TABLE_ROW_WEIGHT="0").search(question)
    assert sources(without_rows)[0] == "guide/labeling.md"  # by the whole chunks' meaning, the guide wins


def test_a_question_about_one_change_finds_the_release_note_listing_it(retriever_for) -> None:
    question = "was the bug with redis usernames in wait-for-redis ever fixed?"
    assert sources(retriever_for().search(question))[0] == "release_notes/2.26.1.md"
    # the note's six fixes blur its vector: by whole chunks, the Redis guide wins
    assert sources(retriever_for(TABLE_ROW_WEIGHT="0").search(question))[0] == "guide/redis.md"


def test_a_question_naming_a_page_by_its_title_finds_that_page(retriever_for) -> None:
    question = (
        "With the Taxonomy tag can I prevent people from picking a parent category and only allow the "
        "most specific ones?"
    )
    rows_off = {
        "TABLE_ROW_WEIGHT": "0"
    }  # the leafsOnly row would find the fragment too: the title alone here
    named = retriever_for(**rows_off).search(question)
    assert sources(named)[0] == "includes/tags/taxonomy.md"
    assert named.documents[0].metadata["title"] == "Taxonomy (tags/taxonomy)"
    unnamed = retriever_for(TITLE_WEIGHT="0", **rows_off).search(question)
    assert sources(unnamed)[0] == "templates/hierarchy.md"  # by meaning alone the template wins
    # matched as written: lower-case "taxonomy" in running text, or "style" in "S3-style", is no title
    lower = retriever_for(**rows_off).search(question.replace("Taxonomy tag", "taxonomy"))
    assert sources(lower)[0] == "templates/hierarchy.md"
    # with every signal on, the fragment is first whether or not the title is written as such
    assert sources(retriever_for().search(question))[0] == "includes/tags/taxonomy.md"


def test_a_release_named_by_its_number_finds_its_release_note(retriever_for) -> None:
    question = "which helm chart version shipped with on-prem LSE 2.22.0?"
    assert sources(retriever_for().search(question))[0] == "release_notes/2.22.0.md"
    # by meaning, and by the older note's item about its new chart, 2.3.1 is closer
    assert sources(retriever_for(TITLE_WEIGHT="0").search(question))[0] == "release_notes/2.3.1.md"
    assert versions_named("Label Studio Enterprise 2.30.0") == ["2.30.0", "2.30"]  # "since upgrading to 2.30"
    assert versions_named("Label Studio Enterprise 2.10.1.post1") == ["2.10.1"]
    assert versions_named("Python 3") == [] and versions_named("Video") == []


def test_a_question_naming_an_edition_prefers_that_editions_page(retriever_for) -> None:
    community = (
        "community edition: can annotators get tasks in random order instead of the Data Manager order?"
    )
    assert sources(retriever_for().search(community))[0] == "guide/project_settings.md"
    # the Enterprise page says more, so without the edition it is first
    assert sources(retriever_for(EDITION_WEIGHT="0").search(community))[0] == "guide/project_settings_lse.md"
    assert sources(retriever_for().search(community.replace("community edition", "LSE")))[0] == (
        "guide/project_settings_lse.md"
    )
    assert edition_asked("open-source version, self hosted") == "opensource"
    assert edition_asked("Enterprise or community edition?") == ""  # both named: no preference
    assert edition_asked("else, elsewhere") == ""


def test_a_question_asking_which_tag_to_use_prefers_the_tag_page(retriever_for) -> None:
    question = "which tag do I use to compare two model answers side by side and pick the better one?"
    assert sources(retriever_for().search(question))[0] == "tags/pairwise.md"
    # the template says it in the question's words; the tag page speaks of objects and parameters
    assert sources(retriever_for(TAG_PAGE_WEIGHT="0").search(question))[0] == "templates/side_by_side.md"
    for asks in (
        "is there a tag that renders markdown?",
        "what tag/attribute limits the date?",
        "the right tag for it",
    ):
        assert asks_which_tag(asks)
    for names in ("the Video tag plays it", "which control tags can it fill?", "tag my images"):
        assert not asks_which_tag(names)


def test_the_same_paragraph_copied_into_many_pages_is_shown_once(retriever_for) -> None:
    result = retriever_for().search("start the ml backend with docker on localhost:9090", k=3)
    copies = [s for s in sources(result) if s.startswith("tutorials/")]
    assert len(copies) == 1  # one copy of the tutorials' paragraph, then other passages
    assert "guide/ml.md" in sources(result)


def test_k_and_files_per_passage_limits(retriever_for) -> None:
    result = retriever_for(MAX_CHUNKS_PER_FILE="1").search("export percentages snapshots", k=3)
    assert len(result.documents) <= 3
    assert len(set(sources(result))) == len(sources(result))


def test_every_page_shows_its_best_passage_before_any_page_shows_a_second(retriever_for) -> None:
    # narrow passages, so the long export page offers two that the question matches
    retriever = retriever_for(RETRIEVAL_CONTEXT_CHARS="400")
    result = retriever.search("snapshot_retention_days of projects that keep their tasks", k=5)
    shown = sources(result)
    assert shown[0] == "guide/export.md" and shown.count("guide/export.md") == 2
    second = shown.index("guide/export.md", 1)
    assert len(set(shown[:second])) == second  # one passage per page up to the first repeat
    assert set(shown[second:]) <= set(shown[:second])  # after it, only second passages
    scores = [d.metadata["score"] for d in result.documents[:second]]
    assert scores == sorted(scores, reverse=True)  # pages in the order of their best passage
