"""The request bodies. Types are strict (``"k": "5"`` is refused, not coerced) and unknown
fields are refused, so a typo is a 422 rather than a silently ignored option; the limits
(limits.py) are part of the schema, so /openapi.json shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from searchkit.server.limits import MAX_BATCH, MAX_DIMENSION, MAX_DOCUMENTS, MAX_IDS, MAX_K, MAX_TEXT_CHARS

__all__ = [
    "DeleteRequest",
    "DocumentsRequest",
    "EmbedRequest",
    "SearchRequest",
    "SimilarityRequest",
]


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (half a UTF-16 pair), not text") from None
    return text


Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS), AfterValidator(_encodable)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=1_000), AfterValidator(_encodable)]
Texts = Annotated[list[Text], Field(min_length=1, max_length=MAX_BATCH)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class SearchRequest(_Body):
    """One query (``query``) or a batch (``queries``), never both."""

    query: Text | None = None
    queries: Texts | None = None
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 10
    where: dict[str, Any] | None = Field(
        None, description="A metadata filter, as `searchkit query --where` takes it."
    )
    mode: Literal["dense", "keyword", "hybrid"] = Field(
        "dense", description="How to rank: embeddings, BM25 keywords, or both fused."
    )
    group_by_parent: bool = Field(
        False, description="Rank the documents indexed with --split by their best piece."
    )

    @model_validator(mode="after")
    def _one_of(self) -> SearchRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give either 'query' (one text) or 'queries' (a list of texts)")
        return self


class Document(_Body):
    id: Key | int
    text: Text
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The item's own vector, made with the index's model (it still embeds the queries).
    embedding: Annotated[list[float], Field(min_length=1, max_length=MAX_DIMENSION)] | None = None


class DocumentsRequest(_Body):
    documents: Annotated[list[Document], Field(min_length=1, max_length=MAX_DOCUMENTS)]


class DeleteRequest(_Body):
    ids: Annotated[list[Key | int], Field(min_length=1, max_length=MAX_IDS)]


class SimilarityRequest(_Body):
    texts: Texts
    to: Texts | None = None
    metric: str = Field("cosine", description="cosine, dot, euclidean or manhattan")


class EmbedRequest(_Body):
    texts: Texts
