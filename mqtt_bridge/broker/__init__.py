"""The production broker's configuration, ACL and the tool that provisions its users."""
