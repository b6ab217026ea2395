/*
 * main.c - the dotsocr command: one entry per command, each in its own
 * cmd_*.c, all on the public API (include/dotsocr.h) alone.
 */
#include "cli.h"

static const dots_cli_command commands[] = {
    {"parse", dots_cmd_parse, "documents -> layout JSON, Markdown and layout pictures per page"},
    {"run", dots_cmd_run, "one page -> the model's raw answer, streamed"},
    {"info", dots_cmd_info, "validate a model and print its config and sizes"},
    {"convert", dots_cmd_convert, "model -> one GGUF file, or llama.cpp's LM + mmproj pair"},
    {"tokenize", dots_cmd_tokenize, "text on stdin -> token ids"},
    {"detokenize", dots_cmd_detokenize, "token ids on stdin -> text"},
    {"make-model", dots_cmd_make_model, "write a random-weight checkpoint (tests, benchmarks)"},
};

int main(int argc, char **argv) {
    return dots_cli_main("dotsocr", argc, argv, commands, sizeof commands / sizeof commands[0]);
}
