terraform import platform_stack.infra infra-controllers
