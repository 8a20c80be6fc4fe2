# Import a record set by zone/name/type, or <dns block>:zone/name/type. An imported set is
# left in place on destroy unless on_destroy = "delete".
terraform import platform_dns_record.grafana lan:home.example.com/grafana/A
