/* replaced as the reports land */
int report_placeholder(void);
int report_placeholder(void) { return 0; }
