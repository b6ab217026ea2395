/*
 * main.c - the dotsocr command. The commands (cli.c's table, one cmd_*.c
 * each) use the public API (include/dotsocr.h) alone.
 */
#include "cli.h"

int main(int argc, char **argv) { return dots_cli_main("dotsocr", argc, argv, NULL, 0); }
