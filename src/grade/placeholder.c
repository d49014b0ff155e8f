/* replaced as the graders land */
int grade_placeholder(void);
int grade_placeholder(void) { return 0; }
