/** The channel contract (contract.ts), run once per channel driver. */
import { runChannelContract } from "./contract.js";
import { loopbackDriver } from "./drivers/loopback.js";
import { slackDriver } from "./drivers/slack.js";
import { telegramDriver } from "./drivers/telegram.js";
import { whatsappDriver } from "./drivers/whatsapp.js";
import { whatsappCloudDriver } from "./drivers/whatsapp_cloud.js";

runChannelContract(loopbackDriver());
runChannelContract(telegramDriver());
runChannelContract(slackDriver());
runChannelContract(whatsappDriver());
runChannelContract(whatsappCloudDriver());
