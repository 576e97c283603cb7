from opml.cli import main

main()
