/* Tokenizers (issue 6): byte-level BPE from a Hugging Face tokenizer.json
 * (GPT-2 / Llama-3 / Qwen: the pre-tokenizer's split regex, byte-to-unicode
 * map, merges in rank order, added and special tokens), SentencePiece-style
 * BPE with byte fallback (Llama-2's tokenizer.json: "▁" for spaces,
 * <0xNN> byte tokens), WordPiece (BERT's vocab, "##" continuations, basic
 * lower-casing and punctuation split as the file says) and character level
 * (one token per Unicode character from a vocab, for arithmetic research
 * models). No I/O beyond reading the file named; malformed input is
 * PB_EPARSE naming the file and what is wrong, never a crash. */
#ifndef PE_TOKENIZER_H
#define PE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/pb.h"

typedef struct pe_tok pe_tok_t;

typedef enum { PE_TOK_BPE_BYTE, PE_TOK_BPE_SP, PE_TOK_WORDPIECE, PE_TOK_CHAR } pe_tok_kind_t;

/* Load a checkpoint directory's tokenizer: tokenizer.json when present
 * (its model.type says BPE or WordPiece; byte fallback / ByteLevel decide
 * which BPE), else vocab.txt (WordPiece) or vocab.json + merges.txt
 * (byte-level BPE), else a character vocab (posbench's research models:
 * tokenizer.json with model.type "Char" or "vocab_chars.json"). */
int pe_tok_open_dir(const char *dir, pe_tok_t **out, pb_err_t *err);
/* The same from a tokenizer.json image in memory (tests, fuzzer); name is
 * used in errors. */
int pe_tok_open_json(const char *text, size_t len, const char *name, pe_tok_t **out,
                     pb_err_t *err);
void pe_tok_free(pe_tok_t *t);

pe_tok_kind_t pe_tok_kind(const pe_tok_t *t);
size_t pe_tok_vocab_size(const pe_tok_t *t);

/* Encode text[0, len) (UTF-8; invalid bytes handled as the model's byte
 * fallback or byte-level map does) into *ids (malloc'd, *n ids). add_special:
 * add the BOS/CLS/SEP the tokenizer's post-processor specifies. Special
 * tokens written literally in the text are matched when the file marks them
 * as such (added_tokens with special=true). */
int pe_tok_encode(const pe_tok_t *t, const char *text, size_t len, int add_special,
                  int32_t **ids, size_t *n);
/* Count tokens of text without keeping them (the suites' length targets). */
int pe_tok_count(const pe_tok_t *t, const char *text, size_t len, int64_t *n);
/* Decode ids into *text (malloc'd, NUL-terminated, *len bytes); skip_special
 * drops special tokens. An id out of range is PB_EINVAL. */
int pe_tok_decode(const pe_tok_t *t, const int32_t *ids, size_t n, int skip_special, char **text,
                  size_t *len);

/* Special token ids, -1 when the tokenizer has none. */
int32_t pe_tok_bos(const pe_tok_t *t);
int32_t pe_tok_eos(const pe_tok_t *t);
int32_t pe_tok_pad(const pe_tok_t *t);
/* The id of a token string, -1 when absent. */
int32_t pe_tok_id(const pe_tok_t *t, const char *token);

#endif
